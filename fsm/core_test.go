package fsm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hotline-go/hotline/actor"
	"github.com/stretchr/testify/require"
)

// The core's tests drive it through a recording shell: no actor, no
// goroutine, no clock.

type recShell struct {
	log     []string
	handles int
	held    int
	stopped error
}

func (s *recShell) add(format string, args ...any) {
	s.log = append(s.log, fmt.Sprintf(format, args...))
}

func (s *recShell) reply(to caller, v any, err error) {
	who := "live"
	if h := to.held(); h != nil {
		who = h.(string)
	} else if !to.live() {
		return
	}
	if err != nil {
		s.add("reply %s error %v", who, err)
	} else {
		s.add("reply %s %v", who, v)
	}
}

func (s *recShell) hold() caller {
	s.held++
	h := fmt.Sprintf("held%d", s.held)
	s.add("hold %s", h)
	return caller{h}
}

func (s *recShell) startTimer(msg timeoutMsg, d time.Duration) any {
	s.handles++
	s.add("start %v%s %v gen %d", msg.kind, suffix(msg.name), d, msg.gen)
	return s.handles
}

func (s *recShell) stopTimer(h any) { s.add("stop timer %v", h) }

func (s *recShell) stop(reason error) {
	s.stopped = reason
	s.add("stop %v", reason)
}

func (s *recShell) drop(ev Event, err error) { s.add("drop %s: %v", ev.Name(), err) }

func suffix(name string) string {
	if name == "" {
		return ""
	}
	return ":" + name
}

// take returns the log so far and clears it.
func (s *recShell) take() []string {
	l := s.log
	s.log = nil
	return l
}

// Events of the test machine.
type (
	Ev    struct{ N int }
	Ping  struct{}
	Later struct{ N int }
	Boom  struct{}
	Tick  struct{ N int }
	Go    struct{ To string }
	Bad   struct{}
)

// trail is the test machine's data: what it saw, in order.
type trail struct{ Seen []string }

func (t trail) with(s string) trail {
	return trail{Seen: append(t.Seen[:len(t.Seen):len(t.Seen)], s)}
}

// newTestMachine returns a machine with states a and b whose handlers
// record what they see and do what the event says.
func newTestMachine() *Machine[trail] {
	m := Define("test", "v1", "a", trail{})
	OnAny(m, func(e Ev, d trail) Result[trail] { return Keep(d.with(fmt.Sprintf("ev%d", e.N))) })
	OnAny(m, func(_ Ping, d trail) Result[trail] { return Keep(d, Reply("pong")) })
	On(m, "a", func(e Later, d trail) Result[trail] { return Keep(d.with(fmt.Sprintf("postpone%d", e.N)), Postpone()) })
	On(m, "b", func(e Later, d trail) Result[trail] {
		return Keep(d.with(fmt.Sprintf("later%d", e.N)), Reply(e.N))
	})
	OnAny(m, func(g Go, d trail) Result[trail] { return Next(g.To, d.with("go "+g.To)) })
	OnAny(m, func(t Tick, d trail) Result[trail] { return Keep(d.with(fmt.Sprintf("tick%d", t.N))) })
	OnAny(m, func(_ Boom, d trail) Result[trail] { panic("boom") })
	OnAny(m, func(_ Bad, d trail) Result[trail] { return Result[trail]{} })
	m.Enter("b", func(prev string, d trail) Result[trail] { return Keep(d.with("enter b from " + prev)) })
	return m
}

func newCore(t *testing.T, code Code) (*core, *recShell) {
	t.Helper()
	in, err := code.New(context.Background(), "id1")
	require.NoError(t, err)
	c := &core{code: code, id: "id1"}
	c.setIn(in)
	sh := &recShell{}
	require.NoError(t, c.start(sh))
	return c, sh
}

func seen(t *testing.T, c *core) []string {
	t.Helper()
	return c.in.(*instance[trail]).data.Seen
}

func TestCoreDispatch(t *testing.T) {
	tests := []struct {
		name  string
		setup func(m *Machine[trail])
		run   func(c *core, sh *recShell)
		seen  []string
		log   []string
	}{
		{
			name: "reply to a call",
			run:  func(c *core, sh *recShell) { c.dispatch(sh, Event{Kind: KindCall, Payload: Ping{}}, live) },
			log:  []string{"reply live pong"},
		},
		{
			name: "reply to a cast does nothing",
			run:  func(c *core, sh *recShell) { c.dispatch(sh, Event{Payload: Ping{}}, caller{}) },
		},
		{
			name: "postponed events are retried after a change of state, in order",
			run: func(c *core, sh *recShell) {
				c.dispatch(sh, Event{Payload: Later{1}}, caller{})
				c.dispatch(sh, Event{Payload: Ev{1}}, caller{})
				c.dispatch(sh, Event{Payload: Later{2}}, caller{})
				c.dispatch(sh, Event{Payload: Go{"a"}}, caller{}) // not a change
				c.dispatch(sh, Event{Payload: Go{"b"}}, caller{})
			},
			seen: []string{"postpone1", "ev1", "postpone2", "go a", "go b", "enter b from a", "later1", "later2"},
		},
		{
			name: "a postponed call is answered by the handler that takes it",
			run: func(c *core, sh *recShell) {
				c.dispatch(sh, Event{Kind: KindCall, Payload: Later{7}}, live)
				c.dispatch(sh, Event{Payload: Go{"b"}}, caller{})
			},
			seen: []string{"postpone7", "go b", "enter b from a", "later7"},
			log:  []string{"hold held1", "reply held1 7"},
		},
		{
			name: "a retried call that gets no reply is told so",
			setup: func(m *Machine[trail]) {
				On(m, "c", func(e Later, d trail) Result[trail] { return Keep(d.with("silent")) })
			},
			run: func(c *core, sh *recShell) {
				c.dispatch(sh, Event{Kind: KindCall, Payload: Later{1}}, live)
				c.dispatch(sh, Event{Payload: Go{"c"}}, caller{})
			},
			seen: []string{"postpone1", "go c", "silent"},
			log:  []string{"hold held1", "reply held1 error " + actor.ErrNoReply.Error()},
		},
		{
			name: "inserted events come first, in order, then postponed ones, then the mailbox",
			setup: func(m *Machine[trail]) {
				On(m, "a", func(e Ev, d trail) Result[trail] {
					if e.N != 0 {
						return Keep(d.with(fmt.Sprintf("ev%d", e.N)))
					}
					return Next("b", d.with("ev0"), NextEvent(Ev{1}), NextEvent(Ev{2}))
				})
			},
			run: func(c *core, sh *recShell) {
				c.dispatch(sh, Event{Payload: Later{1}}, caller{})
				c.dispatch(sh, Event{Payload: Ev{0}}, caller{})
				c.dispatch(sh, Event{Payload: Ev{3}}, caller{})
			},
			seen: []string{"postpone1", "ev0", "enter b from a", "ev1", "ev2", "later1", "ev3"},
		},
		{
			name: "postponing and changing state retries at once",
			setup: func(m *Machine[trail]) {
				On(m, "a", func(_ Tick, d trail) Result[trail] { return Next("b", d.with("tick in a"), Postpone()) })
			},
			run:  func(c *core, sh *recShell) { c.dispatch(sh, Event{Payload: Tick{5}}, caller{}) },
			seen: []string{"tick in a", "enter b from a", "tick5"},
		},
		{
			name: "an event of the type just handled goes to the new state's handler",
			setup: func(m *Machine[trail]) {
				On(m, "a", func(t Tick, d trail) Result[trail] { return Next("b", d.with(fmt.Sprintf("tick%d in a", t.N))) })
			},
			run: func(c *core, sh *recShell) {
				c.dispatch(sh, Event{Payload: Tick{1}}, caller{})
				c.dispatch(sh, Event{Payload: Tick{2}}, caller{})
				c.dispatch(sh, Event{Payload: Go{"a"}}, caller{})
				c.dispatch(sh, Event{Payload: Tick{3}}, caller{})
			},
			seen: []string{"tick1 in a", "enter b from a", "tick2", "go a", "tick3 in a", "enter b from a"},
		},
		{
			name: "stop replies first",
			setup: func(m *Machine[trail]) {
				On(m, "a", func(_ Ping, d trail) Result[trail] { return StopWith(errors.New("done"), d, Reply("bye")) })
			},
			run: func(c *core, sh *recShell) {
				c.dispatch(sh, Event{Kind: KindCall, Payload: Ping{}}, live)
				c.dispatch(sh, Event{Payload: Ev{1}}, caller{}) // a stopped core ignores it
			},
			log: []string{"reply live bye", "stop done"},
		},
		{
			name: "actions after Stop are ignored",
			setup: func(m *Machine[trail]) {
				On(m, "a", func(_ Ping, d trail) Result[trail] { return Keep(d, Stop(nil), Reply("late")) })
			},
			run: func(c *core, sh *recShell) { c.dispatch(sh, Event{Kind: KindCall, Payload: Ping{}}, live) },
			log: []string{"stop <nil>"},
		},
		{
			name: "an unknown call is an error for its caller",
			run:  func(c *core, sh *recShell) { c.dispatch(sh, Event{Kind: KindCall, Payload: "hello"}, live) },
			log:  []string{`reply live error fsm: no handler for event string in state "a" of test v1`},
		},
		{
			name: "an unknown cast is dropped",
			run:  func(c *core, sh *recShell) { c.dispatch(sh, Event{Payload: 42}, caller{}) },
			log:  []string{`drop int: fsm: no handler for event int in state "a" of test v1`},
		},
		{
			name: "a state with no handler of its own uses the any-state one",
			run:  func(c *core, sh *recShell) { c.dispatch(sh, Event{Payload: Later{1}}, caller{}) },
			setup: func(m *Machine[trail]) {
				OnAny(m, func(l Later, d trail) Result[trail] { return Keep(d.with("any")) })
			},
			seen: []string{"postpone1"}, // state a has its own
		},
		{
			name: "the zero Result stops the machine",
			run:  func(c *core, sh *recShell) { c.dispatch(sh, Event{Payload: Bad{}}, caller{}) },
			log:  []string{`stop fsm: bad handler result: test v1: a handler in state "a" returned the zero Result`},
		},
		{
			name: "an enter handler may not change the state",
			setup: func(m *Machine[trail]) {
				m.Enter("c", func(_ string, d trail) Result[trail] { return Next("a", d) })
			},
			run:  func(c *core, sh *recShell) { c.dispatch(sh, Event{Payload: Go{"c"}}, caller{}) },
			seen: []string{"go c"},
			log:  []string{`stop fsm: bad handler result: test v1: an enter handler of state "c" may not change the state (to "a")`},
		},
		{
			name: "an enter handler may not postpone",
			setup: func(m *Machine[trail]) {
				m.Enter("c", func(_ string, d trail) Result[trail] { return Keep(d, Postpone()) })
			},
			run:  func(c *core, sh *recShell) { c.dispatch(sh, Event{Payload: Go{"c"}}, caller{}) },
			seen: []string{"go c"},
			log:  []string{`stop fsm: bad handler result: test v1: an enter handler of state "c" used postpone`},
		},
		{
			name: "an enter handler may reply to the caller whose event changed the state",
			setup: func(m *Machine[trail]) {
				m.Enter("c", func(prev string, d trail) Result[trail] { return Keep(d, Reply("entered c from "+prev)) })
			},
			run:  func(c *core, sh *recShell) { c.dispatch(sh, Event{Kind: KindCall, Payload: Go{"c"}}, live) },
			seen: []string{"go c"},
			log:  []string{"reply live entered c from a"},
		},
		{
			name: "OnUnknown takes what no handler takes",
			setup: func(m *Machine[trail]) {
				m.OnUnknown(func(ev Event, d trail) Result[trail] {
					return Keep(d.with(fmt.Sprintf("unknown %v %s", ev.Kind, ev.Name())))
				})
			},
			run:  func(c *core, sh *recShell) { c.dispatch(sh, Event{Kind: KindCall, Payload: 3.5}, live) },
			seen: []string{"unknown call float64"},
		},
		{
			name: "an unknown event stops the machine only if OnUnknown says so",
			setup: func(m *Machine[trail]) {
				m.OnUnknown(func(ev Event, d trail) Result[trail] {
					if ev.Payload == "quit" {
						return StopWith(errors.New("told to quit"), d)
					}
					return Keep(d.with("ignored " + ev.Name()))
				})
			},
			run: func(c *core, sh *recShell) {
				c.dispatch(sh, Event{Payload: 1}, caller{})
				c.dispatch(sh, Event{Payload: "quit"}, caller{})
			},
			seen: []string{"ignored int"},
			log:  []string{"stop told to quit"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestMachine()
			if tt.setup != nil {
				tt.setup(m)
			}
			c, sh := newCore(t, m)
			tt.run(c, sh)
			require.Equal(t, tt.seen, seen(t, c))
			require.Equal(t, tt.log, sh.log)
		})
	}
}

func TestCorePanicPropagates(t *testing.T) {
	c, sh := newCore(t, newTestMachine())
	require.PanicsWithValue(t, "boom", func() { c.dispatch(sh, Event{Payload: Boom{}}, caller{}) })
}

func TestCoreEnterAtStart(t *testing.T) {
	m := newTestMachine()
	m.InitFunc(func(id string) (string, trail) { return "b", trail{Seen: []string{"init " + id}} })
	c, _ := newCore(t, m)
	require.Equal(t, []string{"init id1", "enter b from b"}, seen(t, c))
}

// zeroThenGo is an event of TestCoreTimeouts.
type zeroThenGo struct{}

func TestCoreTimeouts(t *testing.T) {
	type step struct {
		do   func(c *core, sh *recShell)
		log  []string
		seen []string // appended to what was seen
	}
	cast := func(p any) func(c *core, sh *recShell) {
		return func(c *core, sh *recShell) { c.dispatch(sh, Event{Payload: p}, caller{}) }
	}
	fire := func(kind Kind, name string, gen uint64) func(c *core, sh *recShell) {
		return func(c *core, sh *recShell) { c.fire(sh, timeoutMsg{kind: kind, name: name, gen: gen}) }
	}
	tests := []struct {
		name  string
		setup func(m *Machine[trail])
		steps []step
	}{
		{
			name: "a state timeout fires in its state",
			setup: func(m *Machine[trail]) {
				On(m, "a", func(_ Ping, d trail) Result[trail] { return Keep(d, StateTimeout(time.Second, Tick{1})) })
			},
			steps: []step{
				{do: cast(Ping{}), log: []string{"start state_timeout 1s gen 1"}},
				{do: cast(Ev{1}), seen: []string{"ev1"}},
				{do: fire(KindStateTimeout, "", 1), seen: []string{"tick1"}},
				{do: fire(KindStateTimeout, "", 1)}, // once only
			},
		},
		{
			name: "a change of state cancels the state timeout; one set with Next is the next state's",
			setup: func(m *Machine[trail]) {
				On(m, "a", func(_ Ping, d trail) Result[trail] { return Keep(d, StateTimeout(time.Second, Tick{1})) })
				On(m, "a", func(e Ev, d trail) Result[trail] { return Next("b", d, StateTimeout(time.Minute, Tick{2})) })
			},
			steps: []step{
				{do: cast(Ping{}), log: []string{"start state_timeout 1s gen 1"}},
				{do: cast(Ev{}), log: []string{"stop timer 1", "start state_timeout 1m0s gen 2"}, seen: []string{"enter b from a"}},
				{do: fire(KindStateTimeout, "", 1)}, // stale: already fired when cancelled
				{do: fire(KindStateTimeout, "", 2), seen: []string{"tick2"}},
			},
		},
		{
			name: "a state timeout is replaced by the next, and can be cancelled",
			setup: func(m *Machine[trail]) {
				On(m, "a", func(p Ping, d trail) Result[trail] { return Keep(d, StateTimeout(time.Second, Tick{1})) })
				On(m, "a", func(e Ev, d trail) Result[trail] { return Keep(d, CancelStateTimeout()) })
			},
			steps: []step{
				{do: cast(Ping{}), log: []string{"start state_timeout 1s gen 1"}},
				{do: cast(Ping{}), log: []string{"stop timer 1", "start state_timeout 1s gen 2"}},
				{do: cast(Ev{}), log: []string{"stop timer 2"}},
				{do: fire(KindStateTimeout, "", 2)},
			},
		},
		{
			name: "any event cancels the event timeout",
			setup: func(m *Machine[trail]) {
				On(m, "a", func(_ Ping, d trail) Result[trail] { return Keep(d, EventTimeout(time.Second, Tick{3})) })
			},
			steps: []step{
				{do: cast(Ping{}), log: []string{"start event_timeout 1s gen 1"}},
				{do: cast(Ev{1}), log: []string{"stop timer 1"}, seen: []string{"ev1"}},
				{do: fire(KindEventTimeout, "", 1)},
				{do: cast(Ping{}), log: []string{"start event_timeout 1s gen 2"}},
				{do: fire(KindEventTimeout, "", 2), seen: []string{"tick3"}},
			},
		},
		{
			name: "an unknown event cancels the event timeout too",
			setup: func(m *Machine[trail]) {
				On(m, "a", func(_ Ping, d trail) Result[trail] { return Keep(d, EventTimeout(time.Second, Tick{3})) })
			},
			steps: []step{
				{do: cast(Ping{}), log: []string{"start event_timeout 1s gen 1"}},
				{do: cast(7), log: []string{"stop timer 1", `drop int: fsm: no handler for event int in state "a" of test v1`}},
			},
		},
		{
			name: "generic timeouts are set, replaced and cancelled by name, and survive events and changes of state",
			setup: func(m *Machine[trail]) {
				On(m, "a", func(e Ev, d trail) Result[trail] {
					return Keep(d, Timeout("x", time.Second, Tick{e.N}), Timeout("y", 2*time.Second, Tick{10 + e.N}))
				})
				On(m, "b", func(_ Ping, d trail) Result[trail] { return Keep(d, CancelTimeout("y")) })
			},
			steps: []step{
				{do: cast(Ev{1}), log: []string{"start timeout:x 1s gen 1", "start timeout:y 2s gen 2"}},
				{do: cast(Ev{2}), log: []string{"stop timer 1", "start timeout:x 1s gen 3", "stop timer 2", "start timeout:y 2s gen 4"}},
				{do: cast(Go{"b"}), seen: []string{"go b", "enter b from a"}},
				{do: cast(Ping{}), log: []string{"stop timer 4"}},
				{do: fire(KindTimeout, "x", 1)},
				{do: fire(KindTimeout, "y", 4)},
				{do: fire(KindTimeout, "x", 3), seen: []string{"tick2"}},
			},
		},
		{
			name: "a timeout of 0 starts no timer: it is handled after the inserted events, before dispatch returns",
			setup: func(m *Machine[trail]) {
				On(m, "a", func(_ Ping, d trail) Result[trail] {
					return Keep(d, StateTimeout(0, Tick{1}), Timeout("x", -time.Second, Tick{2}), NextEvent(Ev{1}))
				})
				On(m, "a", func(_ zeroThenGo, d trail) Result[trail] {
					return Keep(d, StateTimeout(0, Tick{3}), NextEvent(Go{"b"}))
				})
			},
			steps: []step{
				{do: cast(Ping{}), seen: []string{"ev1", "tick1", "tick2"}},
				{do: cast(zeroThenGo{}), seen: []string{"go b", "enter b from a"}}, // the change of state cancelled it
			},
		},
		{
			name: "a stale timeout is no event: it cancels no event timeout",
			setup: func(m *Machine[trail]) {
				On(m, "a", func(_ Ping, d trail) Result[trail] { return Keep(d, EventTimeout(time.Second, Tick{3})) })
			},
			steps: []step{
				{do: cast(Ping{}), log: []string{"start event_timeout 1s gen 1"}},
				{do: fire(KindStateTimeout, "", 9)},
				{do: fire(KindEventTimeout, "", 1), seen: []string{"tick3"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestMachine()
			tt.setup(m)
			c, sh := newCore(t, m)
			var want []string
			for i, s := range tt.steps {
				s.do(c, sh)
				want = append(want, s.seen...)
				require.Equal(t, s.log, sh.take(), "step %d", i)
				require.Equal(t, want, seen(t, c), "step %d", i)
			}
		})
	}
}

// dueShell is a recShell whose timer handles tell when they are due, as
// the actor shell's do: now plus the delay, on a clock the test moves.
type dueShell struct {
	recShell
	now time.Duration
}

type dueHandle struct {
	n  int
	at time.Duration
}

func (h dueHandle) due() time.Time { return time.Unix(0, 0).Add(h.at) }
func (h dueHandle) String() string { return fmt.Sprint(h.n) }

func (s *dueShell) startTimer(msg timeoutMsg, d time.Duration) any {
	s.recShell.startTimer(msg, d)
	return dueHandle{n: s.handles, at: s.now + d}
}

// When a timeout's message comes, the timeouts due no later than it are
// handled first, by deadline, then in the order set, whichever message
// came first; their timers are stopped, and their messages, if they come,
// are stale. One set by a handler meanwhile waits for its own message.
func TestCoreTimeoutsDueTogether(t *testing.T) {
	m := newTestMachine()
	On(m, "a", func(_ Ping, d trail) Result[trail] {
		return Keep(d,
			Timeout("late", 3*time.Second, Tick{3}),
			Timeout("x", 2*time.Second, Tick{1}),
			StateTimeout(2*time.Second, Tick{2}),
			Timeout("early", time.Second, Tick{0}),
		)
	})
	On(m, "a", func(tk Tick, d trail) Result[trail] {
		d = d.with(fmt.Sprintf("tick%d", tk.N))
		if tk.N == 0 {
			return Keep(d, Timeout("new", time.Second, Tick{9}))
		}
		return Keep(d)
	})
	in, err := m.New(context.Background(), "id1")
	require.NoError(t, err)
	c := &core{code: m, id: "id1"}
	c.setIn(in)
	sh := &dueShell{}
	require.NoError(t, c.start(sh))
	c.dispatch(sh, Event{Payload: Ping{}}, caller{})
	sh.take()
	// The state timeout's message comes first, at 2s: "early" (1s) is
	// handled before it, "x" (2s, set before it) too; "late" is not due.
	// "new" is set by early's handler, at 2s+1s: not due either.
	sh.now = 2 * time.Second
	c.fire(sh, timeoutMsg{kind: KindStateTimeout, gen: 3})
	require.Equal(t, []string{"tick0", "tick1", "tick2"}, seen(t, c))
	require.Equal(t, []string{"stop timer 4", "start timeout:new 1s gen 5", "stop timer 2"}, sh.take())
	for _, gen := range []uint64{4, 2} { // their messages come: stale
		c.fire(sh, timeoutMsg{kind: KindTimeout, name: map[uint64]string{4: "early", 2: "x"}[gen], gen: gen})
	}
	require.Equal(t, []string{"tick0", "tick1", "tick2"}, seen(t, c))
	require.Empty(t, sh.take())
	// At 3s, late's message comes: "new", due with it and set after it,
	// follows it.
	c.fire(sh, timeoutMsg{kind: KindTimeout, name: "late", gen: 1})
	require.Equal(t, []string{"tick0", "tick1", "tick2", "tick3", "tick9"}, seen(t, c))
	require.Equal(t, []string{"stop timer 5"}, sh.take())
}

func TestCoreInfo(t *testing.T) {
	m := newTestMachine()
	On(m, "a", func(e Ev, d trail) Result[trail] {
		return Keep(d, StateTimeout(time.Second, Tick{}), Timeout("ring", time.Second, Tick{}))
	})
	c, sh := newCore(t, m)
	c.tags = map[string]string{"region": "eu"}
	c.dispatch(sh, Event{Payload: Ev{}}, caller{})
	c.dispatch(sh, Event{Payload: Later{}}, caller{})
	c.dispatch(sh, Event{Payload: 1}, caller{})
	inf, err := c.info()
	require.NoError(t, err)
	want, err := encode(trail{Seen: []string{"postpone0"}})
	require.NoError(t, err)
	require.Equal(t, Info{
		Machine: "test", Version: "v1", ID: "id1", Tags: map[string]string{"region": "eu"},
		State: "a", Data: want, Postponed: 1, Dropped: 1,
		Timeouts: []string{"state_timeout", "timeout:ring"},
	}, inf)
	require.True(t, inf.HasTags(map[string]string{"region": "eu"}))
	require.False(t, inf.HasTags(map[string]string{"region": "us"}))
	require.False(t, inf.HasTags(map[string]string{"cohort": "beta"}))
	require.Equal(t, Snapshot{Machine: "test", Version: "v1", State: "a", Data: want}, inf.Snapshot())
}

func TestKindString(t *testing.T) {
	var names []string
	for k := KindCast; k <= KindTimeout+1; k++ {
		names = append(names, k.String())
	}
	require.Equal(t, "cast call internal state_timeout event_timeout timeout kind(6)", strings.Join(names, " "))
}

// Every place that puts an instance in place takes its hot handler slot
// with it (setIn), so that the direct path of machine.Receive never calls
// the handler of an instance the machine no longer runs: a change of
// code, a revert of it, a reload.
func TestInstanceAndHotSlotMoveTogether(t *testing.T) {
	ctx := context.Background()
	v1 := Define("counter", "v1", "on", 0)
	On(v1, "on", func(_ int, n int) Result[int] { return Keep(n + 1) })
	v2 := Define("counter", "v2", "on", 0)
	On(v2, "on", func(_ int, n int) Result[int] { return Keep(n + 2) })
	c, _ := newCore(t, v1)
	same := func(step string) {
		t.Helper()
		h, ok := c.in.(hotInstance)
		require.True(t, ok, step)
		require.Same(t, h.hotSlot(), c.hot, "%s: the hot slot is the running instance's", step)
	}
	same("start")
	_, err := c.change(ctx, v2, false, nil)
	require.NoError(t, err)
	same("change of code")
	_, err = c.revert(nil)
	require.NoError(t, err)
	same("revert")
	require.NoError(t, c.reload(ctx, v1))
	same("reload")
}
