package supervisor_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/supervisor"
)

var errCrash = errors.New("crash")

// logs keeps what a System logs, for tests that check a supervisor's
// reports.
type logs struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *logs) Enabled(context.Context, slog.Level) bool { return true }
func (l *logs) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logs) WithGroup(string) slog.Handler            { return l }
func (l *logs) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r)
	return nil
}

// messages returns the messages logged at level or above.
func (l *logs) messages(level slog.Level) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.records {
		if r.Level >= level {
			out = append(out, r.Message)
		}
	}
	return out
}

// newSystem returns a System shut down when the test ends (inside the
// bubble, for tests in one), and what it logs.
func newSystem(t testing.TB) (*actor.System, *logs) {
	t.Helper()
	l := new(logs)
	s := actor.NewSystem(actor.WithLogger(slog.New(l)))
	t.Cleanup(func() {
		require.NoError(t, s.Shutdown(context.Background()))
	})
	return s, l
}

// journal records what workers do, in order, across goroutines.
type journal struct {
	mu     sync.Mutex
	events []string
}

func (j *journal) add(format string, args ...any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events = append(j.events, fmt.Sprintf(format, args...))
}

// take returns the events so far and forgets them.
func (j *journal) take() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := j.events
	j.events = nil
	return out
}

// Messages a worker understands.
type (
	exitWith struct{ reason error } // stop with reason
	hold     struct{ until chan struct{} }
)

// worker is a test child: it journals its start and its terminate hook
// ("start a", "stop a: actor: shutdown"), exits when told to, and blocks
// when told to.
type worker struct {
	id        string
	j         *journal
	blockStop chan struct{} // if set, Terminate waits for it
	stopTakes time.Duration // how long Terminate takes
}

func (w *worker) Init(*actor.Context) error {
	w.j.add("start %s", w.id)
	return nil
}

func (w *worker) Receive(c *actor.Context, msg any) {
	switch m := msg.(type) {
	case exitWith:
		c.Stop(m.reason)
	case hold:
		<-m.until
	}
}

func (w *worker) Terminate(_ *actor.Context, reason error) {
	if w.blockStop != nil {
		<-w.blockStop
	}
	if w.stopTakes > 0 {
		time.Sleep(w.stopTakes) // only in bubbles: fake time
	}
	w.j.add("stop %s: %v", w.id, reason)
}

// spec is a worker's child spec.
func spec(j *journal, id string, restart supervisor.Restart) supervisor.ChildSpec {
	return supervisor.ChildSpec{
		ID:      id,
		Restart: restart,
		Start: func(sc supervisor.StartContext) (actor.Ref, error) {
			return sc.Spawn(&worker{id: id, j: j})
		},
	}
}

func specs(j *journal, restart supervisor.Restart, ids ...string) []supervisor.ChildSpec {
	out := make([]supervisor.ChildSpec, len(ids))
	for i, id := range ids {
		out[i] = spec(j, id, restart)
	}
	return out
}

func start(t testing.TB, sys *actor.System, strategy supervisor.Strategy, cs []supervisor.ChildSpec, opts ...supervisor.Option) actor.Ref {
	t.Helper()
	sup, err := supervisor.Start(sys, strategy, cs, opts...)
	require.NoError(t, err)
	return sup
}

func which(t testing.TB, sup actor.Ref) []supervisor.Child {
	t.Helper()
	children, err := supervisor.WhichChildren(context.Background(), sup)
	require.NoError(t, err)
	return children
}

// refs maps each child's ID to its Ref (zero when not running).
func refs(t testing.TB, sup actor.Ref) map[string]actor.Ref {
	t.Helper()
	out := make(map[string]actor.Ref)
	for _, ch := range which(t, sup) {
		out[ch.ID] = ch.Ref
	}
	return out
}

func ids(children []supervisor.Child) []string {
	out := make([]string, len(children))
	for i, ch := range children {
		out[i] = ch.ID
	}
	return out
}

// exited reports r's exit reason if it has exited. Only in a bubble: it
// moves the fake clock on by a nanosecond when r is alive.
func exited(t testing.TB, r actor.Ref) (error, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	reason, err := actor.Wait(ctx, r)
	if err != nil {
		require.ErrorIs(t, err, context.DeadlineExceeded)
		return nil, false
	}
	return reason, true
}

// waitExit waits for r to exit and returns its reason. In a bubble, fake
// time makes the bound free.
func waitExit(t testing.TB, r actor.Ref) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	reason, err := actor.Wait(ctx, r)
	require.NoError(t, err)
	return reason
}

func send(t testing.TB, r actor.Ref, msg any) {
	t.Helper()
	require.NoError(t, actor.Send(r, msg))
}

// advance moves a synctest bubble's fake clock on by d and lets every
// goroutine in the bubble settle. time.Sleep runs only in bubbles here,
// where it takes no real time.
func advance(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

func without(s []string, drop string) []string {
	return slices.DeleteFunc(slices.Clone(s), func(x string) bool { return x == drop })
}
