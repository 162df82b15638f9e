package fsm

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/hotline-go/hotline/actor"
)

// machine is the actor that runs a state machine: the shell around core.
// It handles one message at a time as any actor does; the core decides.
type machine struct {
	core
	c        *actor.Context // the current Context, during Init and Receive only
	restored *restored      // what Init puts back, for a machine started from an Image
}

// syncMsg is the message of Sync: answered at once, not an event.
type syncMsg struct{}

func (m *machine) Init(c *actor.Context) error {
	m.c = c
	defer func() { m.c = nil }()
	if m.restored != nil {
		r := m.restored
		m.restored = nil
		m.restore(m, r, time.Now())
		return nil
	}
	return m.start(m)
}

func (m *machine) Receive(c *actor.Context, msg any) {
	// The path of most events: a cast of the type the instance handled
	// last in its state, with nothing queued before it. The instance's
	// handler is called directly, and the shell's Context is set only if
	// the result needs it. (Each call between the mailbox and the user's
	// handler costs about as much as the handler.)
	h := m.hot
	if h == nil || h.fn == nil || typeWord(msg) != h.word ||
		c.IsCall() || m.stopped || len(m.queue) > 0 {
		m.receive(c, msg)
		return
	}
	if m.undo != nil || len(m.timers) > 0 {
		m.beforeCast()
	}
	acts, err := h.fn(msg, h.in)
	if err == nil && len(acts) == 0 && h.fn != nil { // h.fn is nil if the state changed
		return
	}
	m.finishHot(c, msg, acts, err)
}

// finishHot is finish for the direct path.
func (m *machine) finishHot(c *actor.Context, msg any, acts []Action, err error) {
	m.finish(c, Event{Kind: KindCast, Payload: msg}, m.in.State(), acts, err)
}

// beforeCast does what an event does before its handler runs, for the
// casts of the direct path: it ends the possibility to revert the last
// change of code, and cancels the event timeout. Neither needs the
// Context.
func (m *machine) beforeCast() {
	if m.undo != nil {
		m.dropUndo() // closes the replaced instance
	}
	if len(m.timers) > 0 {
		m.cancelTimer(m, KindEventTimeout, "")
	}
}

// receive is Receive for the events of the general path.
func (m *machine) receive(c *actor.Context, msg any) {
	switch w := msg.(type) {
	case timeoutMsg:
		m.c = c
		m.fire(m, w)
		m.c = nil
		return
	case syncMsg:
		c.Reply(nil)
		return
	case *converted:
		msg = w.payload
	}
	ev := Event{Kind: KindCast, Payload: msg}
	if c.IsCall() || m.stopped || len(m.queue) > 0 {
		from := caller{}
		if c.IsCall() {
			ev.Kind, from = KindCall, live
		}
		m.c = c
		m.dispatch(m, ev, from)
		m.c = nil
		return
	}
	// A cast with nothing queued before it (of a type the hot path did not
	// take): dispatch and step in one.
	m.beforeCast()
	state, acts, err := m.in.Handle(ev)
	if err == nil && len(acts) == 0 && same(state, m.state) {
		return
	}
	m.finish(c, ev, state, acts, err)
}

// finish does for a cast what step does after the handler, when its
// result needs more than the new data.
func (m *machine) finish(c *actor.Context, ev Event, state string, acts []Action, err error) {
	m.c = c
	m.after(m, ev, caller{}, state, acts, err)
	if len(m.queue) > 0 {
		m.drain(m)
	}
	m.c = nil
}

// The shell's methods, on the actor's goroutine.

func (m *machine) reply(to caller, v any, err error) {
	switch f := to.h.(type) {
	case actor.From:
		if err != nil {
			f.ReplyError(err)
		} else {
			f.Reply(v)
		}
	case liveCaller:
		if err != nil {
			m.c.ReplyError(err)
		} else {
			m.c.Reply(v)
		}
	}
}

func (m *machine) hold() caller {
	f := m.c.From()
	if f.IsZero() {
		return caller{}
	}
	return caller{f}
}

// liveTimer is the handle of a running timeout: the actor's timer and when
// it is due, for the order of timeouts due together and the remaining time
// an [Image] records.
type liveTimer struct {
	t  *actor.Timer
	at time.Time
}

func (t liveTimer) due() time.Time { return t.at }

func (m *machine) startTimer(msg timeoutMsg, d time.Duration) any {
	return liveTimer{t: m.c.SendAfter(m.c.Self(), d, msg), at: time.Now().Add(d)}
}

func (m *machine) stopTimer(h any) {
	if t, ok := h.(liveTimer); ok {
		t.t.Stop()
	}
}

func (m *machine) stop(reason error) {
	if reason == nil {
		reason = actor.Normal
	}
	if m.c.IsCall() {
		m.c.ReplyError(&actor.ExitError{Actor: m.c.Self(), Reason: reason})
	}
	m.c.Stop(reason)
}

func (m *machine) drop(ev Event, err error) {
	m.c.Logger().Warn("fsm: event dropped", "machine", m.code.Machine(), "version", m.code.Version(),
		"id", m.id, "kind", ev.Kind, "event", ev.Name(), "error", err)
}

// A StartOption configures a machine at [Start].
type StartOption func(*startConfig)

type startConfig struct {
	id       string
	tags     map[string]string
	snapshot *Snapshot
	image    *Image
	spawn    []actor.SpawnOption
	flags    FlagSource
}

// WithID gives the machine an ID: its name among the machines of its kind
// (a phone number, a session key), shown by [Inspect] and in errors, and
// passed to [Machine.InitFunc]. The default is the empty ID.
func WithID(id string) StartOption {
	return func(c *startConfig) { c.id = id }
}

// WithTags labels the machine, say region=eu or cohort=beta, so that
// rollouts can pick groups of machines ([Info.HasTags]). The map is copied.
// The default is no tags.
func WithTags(tags map[string]string) StartOption {
	return func(c *startConfig) { c.tags = maps.Clone(tags) }
}

// FromSnapshot starts the machine in the state and with the data of s, in
// place of its initial ones: loaded as they are if s is of the code's
// version, else through the code's UPGRADE from s.Version. The default is
// the code's initial state and data.
func FromSnapshot(s Snapshot) StartOption {
	return func(c *startConfig) { c.snapshot = &s }
}

// WithSpawnOptions passes options to [actor.System.Spawn]: a registered
// name ([actor.WithName]), a link to a parent ([actor.LinkTo]), a bounded
// mailbox. The default is none.
func WithSpawnOptions(opts ...actor.SpawnOption) StartOption {
	return func(c *startConfig) { c.spawn = append(c.spawn, opts...) }
}

// Start starts a machine running code in sys and returns its Ref. The
// machine starts in the code's initial state (or a snapshot's; see
// [FromSnapshot]) and runs that state's enter handler before Start
// returns. It returns the error of the code, ErrWrongMachine for a
// snapshot of another machine, and those of [actor.System.Spawn].
func Start(ctx context.Context, sys *actor.System, code Code, opts ...StartOption) (actor.Ref, error) {
	var cfg startConfig
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.image != nil {
		return startImage(ctx, sys, code, &cfg)
	}
	var in Instance
	err := protect(func() (err error) {
		switch s := cfg.snapshot; {
		case s == nil:
			in, err = code.New(ctx, cfg.id)
		case s.Machine != code.Machine():
			err = fmt.Errorf("%w: snapshot of %s", ErrWrongMachine, s.Machine)
		case s.Version == code.Version():
			in, err = code.Load(ctx, s.State, s.Data)
		default:
			in, err = code.Upgrade(ctx, s.Version, s.State, s.Data)
		}
		return err
	})
	if err != nil {
		return actor.Ref{}, fmt.Errorf("fsm: start %s %s: %w", code.Machine(), code.Version(), err)
	}
	m := &machine{core: core{code: code, id: cfg.id, tags: cfg.tags, flags: cfg.flags}}
	m.setIn(in)
	m.bindFlags(in)
	ref, err := sys.Spawn(m, cfg.spawn...)
	if err != nil {
		closeInstance(in) // Init failed: the machine never ran
	}
	return ref, err
}

// Cast sends the event ev to the machine and returns at once; see
// [actor.Send] for its errors. A plain actor.Send does the same: any
// message a machine gets is an event, dispatched by its type.
func Cast(to actor.Ref, ev any) error { return actor.Send(to, ev) }

// Call sends the event ev to the machine and waits for the handler's
// [Reply] or for ctx to end. Besides the errors of [actor.Call], it returns
// an error wrapping ErrUnknownEvent or ErrBadEvent when no handler takes
// ev, and actor.ErrNoReply when the handler did not reply.
func Call(ctx context.Context, to actor.Ref, ev any) (any, error) {
	return actor.Call(ctx, to, ev)
}

// Sync returns once the machine has handled every event sent to it before
// by the caller's goroutine (and what those events led to). It is not an
// event: it cancels no event timeout.
func Sync(ctx context.Context, to actor.Ref) error {
	_, err := actor.Call(ctx, to, syncMsg{})
	return err
}

// Info describes a running machine; see [Inspect].
type Info struct {
	Machine   string
	Version   string
	ID        string
	Tags      map[string]string
	State     string
	Data      []byte   // msgpack, in Version's format
	Postponed int      // events postponed until the state changes
	Timeouts  []string // pending: "state_timeout", "event_timeout", "timeout:<name>"
	Dropped   uint64   // cast events that no handler took
}

// Snapshot returns the machine's state and data.
func (i Info) Snapshot() Snapshot {
	return Snapshot{Machine: i.Machine, Version: i.Version, State: i.State, Data: i.Data}
}

// HasTags reports whether the machine has every tag of tags, with the same
// value.
func (i Info) HasTags(tags map[string]string) bool {
	for k, v := range tags {
		if w, ok := i.Tags[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Inspect returns the machine's name, version, ID, tags, state and data,
// read on its own goroutine between two events (also while suspended). It
// is a system operation: it does not wait for the events already queued
// (use [Sync] first for that). It returns ErrNotMachine for an actor that
// is not a machine.
func Inspect(ctx context.Context, ref actor.Ref) (Info, error) {
	var inf Info
	err := actor.Inspect(ctx, ref, func(b actor.Behavior) error {
		m, ok := b.(*machine)
		if !ok {
			return ErrNotMachine
		}
		var err error
		inf, err = m.info()
		return err
	})
	return inf, err
}
