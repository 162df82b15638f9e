package fsm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"
	"unsafe"

	"github.com/hotline-go/hotline/actor"
)

// core is the deterministic part of a running machine: it takes one event
// at a time and decides, with the machine's Code, what follows: the next
// state and data (kept by the Instance), the events to handle next, the
// timeouts to set or cancel, the replies, whether to stop. It never blocks,
// reads no clock and starts no goroutine: what it decides is carried out
// through a shell, which the actor (runtime.go) or a test provides.
type core struct {
	// What every event reads comes first, in two cache lines: the
	// instance, its hot handler, and what sends an event off the direct
	// path (see machine.Receive).
	in      Instance
	hot     *hot   // in's hot handler slot (nil if in has none): set with in by setIn
	undo    *undo  // the last change of code, until an event is handled
	queue   []item // inserted and retried events, handled before the mailbox
	stopped bool
	timers  []timer // pending timeouts

	code      Code
	state     string // in's, as of the last event
	id        string
	tags      map[string]string
	flags     FlagSource // nil: none
	postponed []item     // events kept until the state changes, oldest first
	gen       uint64     // the last timer generation handed out
	dropped   uint64     // events no handler took, casts only
}

// setIn makes in the machine's instance, with its hot handler slot: every
// place that puts an instance in place (a start, a restore, a change of
// code, a revert, a reload) goes through it, so that the direct path never
// calls into an instance that is no longer the machine's.
func (c *core) setIn(in Instance) {
	c.in, c.hot = in, nil
	if h, ok := in.(hotInstance); ok {
		c.hot = h.hotSlot()
	}
}

// shell carries out what the core decides.
type shell interface {
	// reply answers a caller (nothing if to is the zero caller).
	reply(to caller, v any, err error)
	// hold takes the caller of the current event for a later reply.
	hold() caller
	// startTimer arranges for msg to come back to the core's fire after d,
	// and returns a handle for stopTimer.
	startTimer(msg timeoutMsg, d time.Duration) any
	stopTimer(handle any)
	// stop ends the machine with reason once the current event is done;
	// the current caller, if not answered, learns the reason.
	stop(reason error)
	// drop reports an event no handler took.
	drop(ev Event, err error)
}

// An item is an event and who waits for its reply.
type item struct {
	ev   Event
	from caller
}

// caller is who waits for the reply to an event: nobody (the zero caller),
// the shell's current caller (live), or one the shell handed over with
// hold, which the shell alone knows what to make of.
type caller struct{ h any }

type liveCaller struct{}

var live = caller{liveCaller{}}

func (c caller) waiting() bool { return c.h != nil }

func (c caller) live() bool {
	_, ok := c.h.(liveCaller)
	return ok
}

// held returns what hold returned, or nil.
func (c caller) held() any {
	if c.live() {
		return nil
	}
	return c.h
}

// timer is a pending timeout. Its payload stays here, not in the timer's
// message, so that a change of code can convert it.
type timer struct {
	msg     timeoutMsg
	payload any
	handle  any
}

// timeoutMsg is what a timer sends when it fires. The generation tells a
// timeout that was cancelled or replaced after it fired from the live one.
type timeoutMsg struct {
	kind Kind
	name string
	gen  uint64
}

// undo is what a change of code replaced, kept so that it can be put back.
type undo struct {
	code      Code
	in        Instance
	postponed []item
	payloads  []any // of timers, in order
}

// marker reports whether u is not a change but a Stager's mark that the
// machine has handled no event since it was staged: an undo with no
// instance (a change's always has one). There is nothing to revert.
func (u *undo) marker() bool { return u.in == nil }

// start runs the enter handler of the initial state.
func (c *core) start(sh shell) error {
	c.state = c.in.State()
	acts, err := c.in.Enter(c.state)
	if err != nil {
		return err
	}
	var t transition
	if err := c.run(sh, &t, acts, caller{}, true); err != nil {
		return err
	}
	if t.stop {
		c.halt(sh, t.reason)
		return nil
	}
	if len(c.queue) > 0 { // timeouts of d ≤ 0: before any event from the mailbox
		c.drain(sh)
	}
	return nil
}

// dispatch handles ev, then every event it inserts or makes ready, until
// the core has nothing to do before the next message from the mailbox.
func (c *core) dispatch(sh shell, ev Event, from caller) {
	if c.stopped {
		return
	}
	if c.undo != nil {
		c.dropUndo()
	}
	c.step(sh, ev, from)
	if len(c.queue) > 0 {
		c.drain(sh)
	}
}

// drain handles the queued events: inserted and retried events, and the
// timeouts of d ≤ 0 (see setTimer).
func (c *core) drain(sh shell) {
	for len(c.queue) > 0 && !c.stopped {
		it := c.queue[0]
		c.queue[0] = item{}
		c.queue = c.queue[1:]
		if msg, ok := it.ev.Payload.(timeoutMsg); ok {
			i := c.timerOf(msg)
			if i < 0 {
				continue // cancelled or replaced since it was set
			}
			t := c.timers[i]
			c.timers = append(c.timers[:i], c.timers[i+1:]...)
			it.ev = Event{Kind: msg.kind, Payload: t.payload}
		}
		c.step(sh, it.ev, it.from)
	}
	c.queue = nil
}

// fire handles a timer's message, unless the timeout was cancelled or
// replaced since. Every other timeout due no later than this one is due
// too, and its message may not have come yet (each timer sends its own,
// and they race): they are handled first, or with it, in the order they
// are due, and those due together in the order they were set, so that the
// order of timeouts never depends on which timer's message came first. A
// handler may cancel a timeout due with it (a change of state, a state
// timeout); one set by a handler here waits for its own message.
func (c *core) fire(sh shell, msg timeoutMsg) {
	i := c.timerOf(msg)
	if i < 0 {
		return
	}
	by, last := c.timers[i].handle, c.gen
	for !c.stopped {
		j := c.nextDue(msg, by, last)
		if j < 0 {
			return
		}
		t := c.timers[j]
		c.timers = append(c.timers[:j], c.timers[j+1:]...)
		if t.msg != msg {
			sh.stopTimer(t.handle) // its message, if sent, is stale now
		}
		c.dispatch(sh, Event{Kind: t.msg.kind, Payload: t.payload}, caller{})
	}
}

// timerOf returns the index of the pending timeout that sends msg, or -1.
func (c *core) timerOf(msg timeoutMsg) int {
	for i, t := range c.timers {
		if t.msg == msg {
			return i
		}
	}
	return -1
}

// nextDue returns the index of the timeout to handle first among msg's and
// those set up to generation last that are due no later than by (msg's
// handle): the earliest due, and of those due together the first set; -1
// if there is none.
func (c *core) nextDue(msg timeoutMsg, by any, last uint64) int {
	limit, ok := deadline(by)
	best := -1
	for i, t := range c.timers {
		if t.msg != msg {
			d, known := deadline(t.handle)
			if !ok || !known || t.msg.gen > last || d.After(limit) {
				continue
			}
		}
		if best < 0 || dueFirst(t, c.timers[best]) {
			best = i
		}
	}
	return best
}

// A dueTimer is a timer handle that tells when it is due: the actor
// shell's. The core compares deadlines; it reads no clock. A handle that
// does not tell (a test shell's) is handled alone, when its message comes.
type dueTimer interface{ due() time.Time }

func deadline(h any) (time.Time, bool) {
	if d, ok := h.(dueTimer); ok {
		return d.due(), true
	}
	return time.Time{}, false
}

// dueFirst reports whether a is due before b, or with b and set before it.
func dueFirst(a, b timer) bool {
	da, oka := deadline(a.handle)
	db, okb := deadline(b.handle)
	if oka && okb && !da.Equal(db) {
		return da.Before(db)
	}
	return a.msg.gen < b.msg.gen
}

// transition gathers what the actions of one step asked for.
type transition struct {
	replied  bool
	postpone bool
	inserted []item
	stop     bool
	reason   error
}

func (c *core) step(sh shell, ev Event, from caller) {
	if len(c.timers) > 0 {
		c.cancelTimer(sh, KindEventTimeout, "")
	}
	state, acts, err := c.in.Handle(ev)
	if err != nil || !same(state, c.state) || len(acts) > 0 || from.h != nil {
		c.after(sh, ev, from, state, acts, err)
	}
}

// same reports whether a == b, at once when they share their bytes (an
// Instance that keeps its state returns the same string every time).
func same(a, b string) bool {
	return len(a) == len(b) && (unsafe.StringData(a) == unsafe.StringData(b) || a == b)
}

// after finishes a step that did more than change the data.
func (c *core) after(sh shell, ev Event, from caller, state string, acts []Action, err error) {
	switch {
	case err != nil:
		c.reject(sh, ev, from, err)
	case state != c.state || len(acts) > 0:
		prev := c.state
		c.state = state
		c.transit(sh, item{ev: ev, from: from}, acts, prev, state)
	case !from.live():
		c.unanswered(sh, from)
	}
}

// transit carries out a handler's result: its actions, and what a change
// of state brings.
func (c *core) transit(sh shell, it item, acts []Action, prev, state string) {
	changed := state != prev
	if changed {
		c.cancelTimer(sh, KindStateTimeout, "")
	}
	var t transition
	if err := c.run(sh, &t, acts, it.from, false); err != nil {
		c.halt(sh, err)
		return
	}
	if t.postpone && !t.stop {
		if it.from.live() {
			it.from = sh.hold()
		}
		c.postponed = append(c.postponed, it)
	}
	if changed && !t.stop {
		acts, err := c.in.Enter(prev)
		if err == nil {
			err = c.run(sh, &t, acts, it.from, true)
		}
		if err != nil {
			c.halt(sh, err)
			return
		}
	}
	if t.stop {
		c.halt(sh, t.reason)
		return
	}
	if changed && len(c.postponed) > 0 {
		t.inserted = append(t.inserted, c.postponed...)
		c.postponed = nil
	}
	if len(t.inserted) > 0 {
		c.queue = append(t.inserted, c.queue...)
	}
	if !t.replied && !t.postpone && it.from.held() != nil {
		c.unanswered(sh, it.from)
	}
}

// unanswered tells the caller of a postponed call that the handler that
// took it at last did not reply: it never will now, and its caller gets
// what any unanswered caller gets.
func (c *core) unanswered(sh shell, from caller) {
	sh.reply(from, nil, actor.ErrNoReply)
}

// run carries out a handler's actions. Actions after Stop are ignored.
func (c *core) run(sh shell, t *transition, acts []Action, from caller, enter bool) error {
	for _, a := range acts {
		if t.stop {
			return nil
		}
		switch a.kind {
		case ActionNone:
		case ActionReply:
			sh.reply(from, a.value, nil)
			t.replied = t.replied || from.waiting()
		case ActionReplyError:
			sh.reply(from, nil, a.err())
			t.replied = t.replied || from.waiting()
		case ActionPostpone, ActionNextEvent:
			if enter {
				return fmt.Errorf("%w: %s %s: an enter handler of state %q used %v", ErrBadResult, c.code.Machine(), c.code.Version(), c.in.State(), a)
			}
			if a.kind == ActionPostpone {
				t.postpone = true
			} else {
				t.inserted = append(t.inserted, item{ev: Event{Kind: KindInternal, Payload: a.value}})
			}
		case ActionStateTimeout:
			c.setTimer(sh, KindStateTimeout, "", a.after, a.value)
		case ActionCancelStateTimeout:
			c.cancelTimer(sh, KindStateTimeout, "")
		case ActionEventTimeout:
			c.setTimer(sh, KindEventTimeout, "", a.after, a.value)
		case ActionTimeout:
			c.setTimer(sh, KindTimeout, a.name, a.after, a.value)
		case ActionCancelTimeout:
			c.cancelTimer(sh, KindTimeout, a.name)
		case ActionStop:
			t.stop, t.reason = true, a.err()
		default:
			return fmt.Errorf("%w: unknown action %d", ErrBadResult, a.kind)
		}
	}
	return nil
}

// reject answers an event that no handler took, or stops the machine if
// the Instance's error says it must.
func (c *core) reject(sh shell, ev Event, from caller, err error) {
	if !errors.Is(err, ErrUnknownEvent) && !errors.Is(err, ErrBadEvent) {
		c.halt(sh, err)
		return
	}
	if from.waiting() {
		sh.reply(from, nil, err)
		return
	}
	c.dropped++
	sh.drop(ev, err)
}

// halt stops the machine with reason: a Stop action's, or the error of a
// broken handler. The shell answers the current caller; the callers of
// postponed calls learn the reason from the actor's exit.
func (c *core) halt(sh shell, reason error) {
	sh.stop(reason)
	c.stopped = true
}

// setTimer sets a timeout. One of d ≤ 0 starts no timer: as OTP's
// zero time-outs, it is queued after the events queued so far (and those
// that this step inserts or retries, which go before them), so that it is
// handled before any event from the mailbox, unless it is cancelled first
// (an event timeout is by any of those events).
func (c *core) setTimer(sh shell, kind Kind, name string, d time.Duration, payload any) {
	c.cancelTimer(sh, kind, name)
	c.gen++
	msg := timeoutMsg{kind: kind, name: name, gen: c.gen}
	var h any = zeroTimer{}
	if d > 0 {
		h = sh.startTimer(msg, d)
	} else {
		c.queue = append(c.queue, item{ev: Event{Kind: kind, Payload: msg}})
	}
	c.timers = append(c.timers, timer{msg: msg, payload: payload, handle: h})
}

// zeroTimer is the handle of a timeout of d ≤ 0, which waits in the queue.
type zeroTimer struct{}

func (c *core) cancelTimer(sh shell, kind Kind, name string) {
	for i, t := range c.timers {
		if t.msg.kind == kind && t.msg.name == name {
			if t.handle != (zeroTimer{}) {
				sh.stopTimer(t.handle)
			}
			c.timers = append(c.timers[:i], c.timers[i+1:]...)
			return
		}
	}
}

// change moves the machine to code to: it makes the new instance and
// converts the held events and those queued in the mailbox first, and
// changes nothing unless all of that worked. A panic in to's code is an
// error, as any other. It returns the messages to put in the place of the
// queued ones, or nil to leave them.
func (c *core) change(ctx context.Context, to Code, down bool, queued []actor.Queued) ([]any, error) {
	from := c.code
	fail := func(err error) ([]any, error) {
		return nil, &UpgradeError{Machine: from.Machine(), ID: c.id, From: from.Version(), To: to.Version(), Down: down, Err: err}
	}
	if err := checkChange(from, to, false); err != nil {
		return fail(err)
	}
	var in Instance
	err := protect(func() error {
		var err error
		if down {
			var state string
			var data []byte
			if state, data, err = from.Downgrade(ctx, to.Version(), c.in); err == nil {
				in, err = to.Load(ctx, state, data)
			}
			return err
		}
		var data []byte
		if data, err = c.in.Encode(); err == nil {
			in, err = to.Upgrade(ctx, from.Version(), c.in.State(), data)
		}
		return err
	})
	if err != nil {
		return fail(err)
	}
	u := &undo{payloads: make([]any, len(c.timers))}
	var postponed []item
	var payloads, msgs []any
	err = protect(func() error {
		var err error
		postponed, payloads, err = convertHeld(ctx, to, c.postponed, c.timers,
			make([]item, 0, len(c.postponed)), make([]any, 0, len(c.timers)))
		if err == nil {
			msgs, err = convertQueued(ctx, to, queued, u)
		}
		return err
	})
	if err != nil {
		closeInstance(in)
		return fail(err)
	}
	c.dropUndo() // a second change without an event: the first can no longer be undone
	c.bindFlags(in)
	c.install(to, in, postponed, payloads, u)
	return msgs, nil
}

// checkChange says what is wrong with a change of code from from to to:
// another machine, the same version (or, for a reload, another one).
func checkChange(from, to Code, reload bool) error {
	switch {
	case to.Machine() != from.Machine():
		return fmt.Errorf("%w: %s", ErrWrongMachine, to.Machine())
	case reload && to.Version() != from.Version():
		return fmt.Errorf("fsm: reload needs a code of version %s", from.Version())
	case !reload && to.Version() == from.Version():
		return ErrSameVersion
	}
	return nil
}

// convertHeld converts the held events for code to: it appends the
// postponed events, converted, to post, and the payloads of the pending
// timeouts, converted, to pay, in order.
func convertHeld(ctx context.Context, to Code, postponed []item, timers []timer, post []item, pay []any) ([]item, []any, error) {
	for _, it := range postponed {
		ev, err := to.ConvertEvent(ctx, it.ev)
		if err != nil {
			return post, pay, err
		}
		post = append(post, item{ev: ev, from: it.from})
	}
	for _, t := range timers {
		ev, err := to.ConvertEvent(ctx, Event{Kind: t.msg.kind, Payload: t.payload})
		if err != nil {
			return post, pay, err
		}
		pay = append(pay, ev.Payload)
	}
	return post, pay, nil
}

// install puts in, an instance of code to, in the place of the machine's
// instance, with postponed as its held events and payloads as its pending
// timeouts' (nil: kept as they are); u, which the change made with room
// for the timeouts' payloads, records what it replaces, for a Revert.
func (c *core) install(to Code, in Instance, postponed []item, payloads []any, u *undo) {
	u.code, u.in, u.postponed = c.code, c.in, c.postponed
	for i := range c.timers {
		u.payloads[i] = c.timers[i].payload
		if payloads != nil {
			c.timers[i].payload = payloads[i]
		}
	}
	c.code, c.postponed, c.undo = to, postponed, u
	c.setIn(in)
	c.state = in.State()
}

// A converted is an event in the mailbox whose payload a change of code
// converted: the mailbox holds it in the place of the message it was
// (prev), so that a revert of that change puts the message back as it was.
// The machine handles the payload.
type converted struct {
	payload any
	prev    any   // the message as it was in the mailbox
	by      *undo // the change that converted it
}

// queuedEvent returns the event a queued message stands for, and false for a
// message that is not an event (a timer's, Sync's).
func queuedEvent(q actor.Queued) (Event, bool) {
	p := q.Msg
	switch m := p.(type) {
	case timeoutMsg, syncMsg:
		return Event{}, false
	case *converted:
		p = m.payload
	}
	ev := Event{Kind: KindCast, Payload: p}
	if q.Call {
		ev.Kind = KindCall
	}
	return ev, true
}

// refuseSignals returns an error wrapping ErrSignalQueued that names each
// actor.Exit and actor.Down in queued, or nil if there is none.
func refuseSignals(queued []actor.Queued) error {
	var names []string
	for i, q := range queued {
		if !q.Signal {
			continue
		}
		var what string
		switch m := q.Msg.(type) {
		case actor.Exit:
			what = fmt.Sprintf("an actor.Exit from %v (%v)", m.From, m.Reason)
		case actor.Down:
			what = fmt.Sprintf("an actor.Down of %v (%v)", m.Actor, m.Reason)
		default:
			what = fmt.Sprintf("a %T", m)
		}
		names = append(names, fmt.Sprintf("queued message %d of %d is %s", i+1, len(queued), what))
	}
	if names == nil {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrSignalQueued, strings.Join(names, "; "))
}

// convertQueued converts the payloads of the events queued in the mailbox
// for the change u to code to, and returns the messages to put in their
// place, or nil if none changed.
func convertQueued(ctx context.Context, to Code, queued []actor.Queued, u *undo) ([]any, error) {
	var msgs []any
	for i, q := range queued {
		ev, ok := queuedEvent(q)
		if !ok {
			continue
		}
		conv, err := to.ConvertEvent(ctx, ev)
		if err != nil {
			return nil, fmt.Errorf("queued event %d of %d: %w", i+1, len(queued), err)
		}
		if typeWord(conv.Payload) == typeWord(ev.Payload) {
			continue // not converted: of to's type already, or not to's event
		}
		if msgs == nil {
			msgs = make([]any, len(queued))
			for j, q := range queued {
				msgs[j] = q.Msg
			}
		}
		msgs[i] = &converted{payload: conv.Payload, prev: q.Msg, by: u}
	}
	return msgs, nil
}

// revert puts back what the last change of code replaced, if the machine
// has handled no event since, and returns the messages to put in the
// place of the queued ones (those the change converted), or nil.
func (c *core) revert(queued []actor.Queued) ([]any, error) {
	u := c.undo
	if u == nil || u.marker() {
		return nil, ErrNoRevert
	}
	dropped := c.in
	c.code, c.postponed, c.undo = u.code, u.postponed, nil
	c.setIn(u.in)
	if dropped != c.in {
		closeInstance(dropped)
	}
	c.state = c.in.State()
	for i := range c.timers {
		c.timers[i].payload = u.payloads[i]
	}
	var msgs []any
	for i, q := range queued {
		if w, ok := q.Msg.(*converted); ok && w.by == u {
			if msgs == nil {
				msgs = make([]any, len(queued))
				for j, q := range queued {
					msgs[j] = q.Msg
				}
			}
			msgs[i] = w.prev
		}
	}
	return msgs, nil
}

// info describes the machine.
func (c *core) info() (Info, error) {
	data, err := c.in.Encode()
	if err != nil {
		return Info{}, err
	}
	inf := Info{
		Machine: c.code.Machine(), Version: c.code.Version(),
		ID: c.id, Tags: maps.Clone(c.tags),
		State: c.state, Data: data,
		Postponed: len(c.postponed), Dropped: c.dropped,
	}
	for _, t := range c.timers {
		name := t.msg.kind.String()
		if t.msg.kind == KindTimeout {
			name += ":" + t.msg.name
		}
		inf.Timeouts = append(inf.Timeouts, name)
	}
	return inf, nil
}
