package actor

import (
	"log/slog"
	"time"
)

// A Context is what a handler may do while it handles one message: reply,
// spawn, link, monitor, set timers, stop. It is valid only during the call
// to Receive, Init or Terminate that received it, and must not be kept or
// shared with other goroutines.
type Context struct {
	a        *actor
	call     *call // the Call being handled, if any
	gen      uint64
	detached bool  // From was taken
	worker   bool  // on a System's worker goroutine: see handOffSignal
	stop     error // set by Stop
}

// Self returns the actor's own Ref.
func (c *Context) Self() Ref { return Ref{c.a} }

// System returns the actor's System.
func (c *Context) System() *System { return c.a.sys }

// Logger returns the System's logger with the actor's Ref attached.
func (c *Context) Logger() *slog.Logger { return c.a.sys.logger.With("actor", Ref{c.a}) }

// IsCall reports whether the message being handled came from [Call].
func (c *Context) IsCall() bool { return c.call != nil && !c.detached }

// Reply answers the Call being handled with v. It does nothing when the
// message was sent with Send, or once the call has been answered.
func (c *Context) Reply(v any) {
	if c.call != nil && !c.detached {
		c.call.reply(c.gen, v, nil)
	}
}

// ReplyError answers the Call being handled with err (Call returns it as
// its error).
func (c *Context) ReplyError(err error) {
	if c.call != nil && !c.detached {
		c.call.reply(c.gen, nil, err)
	}
}

// From takes the Call being handled so that it can be answered later with
// [From.Reply]; the handler's return then leaves the caller waiting. It
// returns the zero From when the message was not a Call.
func (c *Context) From() From {
	if c.call == nil || c.detached {
		return From{}
	}
	c.detached = true
	a := c.a
	a.mu.Lock()
	e := a.extLocked()
	if e.pending == nil {
		e.pending = make(map[*call]uint64)
	}
	e.pending[c.call] = c.gen
	a.mu.Unlock()
	return From{c: c.call, gen: c.gen, owner: a}
}

// Stop ends the actor with reason (Normal if nil) when the handler
// returns; its terminate hook runs, and its links and monitors are told.
// Called from Init, it makes Spawn fail with reason.
func (c *Context) Stop(reason error) {
	if reason == nil {
		reason = Normal
	}
	c.stop = reason
}

// Spawn starts an actor in the same System; see [System.Spawn]. Use
// [LinkTo] with c.Self() to link it to this actor.
func (c *Context) Spawn(b Behavior, opts ...SpawnOption) (Ref, error) {
	return c.a.sys.Spawn(b, opts...)
}

// TrapExits sets whether exit signals from links (and [SendExit]) arrive as
// [Exit] messages instead of ending this actor. [Kill] is never trapped.
func (c *Context) TrapExits(on bool) {
	c.a.mu.Lock()
	if on {
		c.a.flags |= fTrap
	} else {
		c.a.flags &^= fTrap
	}
	c.a.mu.Unlock()
}

// Link links this actor and r both ways: when either exits with a reason
// other than Normal, the other gets an exit signal. Linking to an actor
// that has exited sends this actor an exit signal with reason ErrNoProc.
func (c *Context) Link(r Ref) {
	if r.a == nil {
		_ = c.a.pushSys(sysMsg{kind: sigExit, reason: ErrNoProc})
		return
	}
	link(c.a, r.a)
}

// Unlink removes the link between this actor and r, if there is one. Once
// it returns, the link has no effect on this actor: an exit signal from r
// due to the link that this actor has not handled yet is dropped (an
// [Exit] message already queued for a trapping actor stays queued).
func (c *Context) Unlink(r Ref) {
	if r.a == nil || r.a == c.a {
		return
	}
	for _, x := range [2][2]*actor{{c.a, r.a}, {r.a, c.a}} {
		x[0].mu.Lock()
		if x[0].ext != nil {
			x[0].ext.links.remove(x[1])
		}
		x[0].mu.Unlock()
	}
}

func link(a, b *actor) {
	if a == b {
		return
	}
	a.mu.Lock()
	ae := a.extLocked()
	had := ae.links.has(b)
	ae.links.add(b)
	a.mu.Unlock()

	b.mu.Lock()
	if b.flags&fDead != 0 {
		b.mu.Unlock()
		if had {
			// Linked already: b's exit signal is on its way, and linking
			// again does nothing, as for a live b.
			return
		}
		a.mu.Lock()
		ae.links.remove(b)
		a.mu.Unlock()
		_ = a.pushSys(sysMsg{kind: sigExit, from: b, reason: ErrNoProc})
		return
	}
	b.extLocked().links.add(a)
	b.mu.Unlock()
}

// MonitorRef names one monitor set with [Context.Monitor]. It is a
// comparable value.
type MonitorRef struct {
	id     uint64
	target *actor
}

// Down is the message a monitoring actor gets, once, when the monitored
// actor exits (at once, with reason ErrNoProc, if it already had).
type Down struct {
	Monitor MonitorRef
	Actor   Ref
	Reason  error
}

// Exit is the message an actor that traps exits gets for an exit signal:
// from a linked actor that exited (From), or from [SendExit] (From is zero).
type Exit struct {
	From   Ref
	Reason error
}

// Monitor asks for a [Down] message when r exits. Monitors are one-way and
// stack: each call sets one more, and each fires once.
func (c *Context) Monitor(r Ref) MonitorRef {
	a, t := c.a, r.a
	m := MonitorRef{id: a.sys.ids.Add(1), target: t}
	if t == nil {
		a.deliver(Down{Monitor: m, Reason: ErrNoProc})
		return m
	}
	// The watcher's side first: the target's exit delivers a Down only
	// for a monitor its watcher still holds (see actor.tellWatcher).
	a.mu.Lock()
	e := a.extLocked()
	if e.monitoring == nil {
		e.monitoring = make(map[uint64]*actor)
	}
	e.monitoring[m.id] = t
	a.mu.Unlock()

	t.mu.Lock()
	if t.flags&fDead != 0 {
		t.mu.Unlock()
		a.mu.Lock()
		delete(e.monitoring, m.id)
		a.mu.Unlock()
		a.deliver(Down{Monitor: m, Actor: r, Reason: ErrNoProc})
		return m
	}
	te := t.extLocked()
	if te.watchers == nil {
		te.watchers = make(map[uint64]*actor)
	}
	te.watchers[m.id] = a
	t.mu.Unlock()
	return m
}

// Demonitor removes a monitor this actor set; a MonitorRef of another
// actor's monitor does nothing. Once Demonitor returns, the monitor's
// [Down] will not arrive; one already queued stays queued (see
// [Context.DemonitorFlush]).
func (c *Context) Demonitor(m MonitorRef) {
	a, t := c.a, m.target
	if t == nil {
		return
	}
	a.mu.Lock()
	own := a.ext != nil && a.ext.monitoring[m.id] == t
	if own {
		delete(a.ext.monitoring, m.id)
	}
	a.mu.Unlock()
	if !own {
		return
	}
	t.mu.Lock()
	if t.ext != nil {
		delete(t.ext.watchers, m.id)
	}
	t.mu.Unlock()
}

// DemonitorFlush is [Context.Demonitor] that also removes the monitor's
// [Down] from this actor's mailbox if it is already queued, as OTP's
// demonitor(Ref, [flush]): once it returns, the handler will not see that
// Down.
func (c *Context) DemonitorFlush(m MonitorRef) {
	c.Demonitor(m)
	if m.target == nil {
		return
	}
	a := c.a
	isDown := func(e envelope) bool {
		d, ok := e.(Down)
		return ok && d.Monitor == m
	}
	a.mu.Lock()
	if mb := a.mb; mb != nil {
		// cur is this goroutine's (the handler runs on it), user the
		// senders': both under the lock, as a refill takes them.
		mb.taken -= mb.cur.remove(&a.sys.segs, isDown)
		mb.user.remove(&a.sys.segs, isDown)
	}
	a.mu.Unlock()
}

// A Timer is a message scheduled with [Context.SendAfter]. It belongs to
// the actor that set it and is cancelled when that actor exits.
type Timer struct {
	t     *time.Timer
	owner *actor
}

// SendAfter sends msg to r after d, unless the Timer is stopped or this
// actor exits first.
func (c *Context) SendAfter(r Ref, d time.Duration, msg any) *Timer {
	a := c.a
	tm := &Timer{owner: a}
	a.mu.Lock()
	e := a.extLocked()
	if e.timers == nil {
		e.timers = make(map[*Timer]struct{})
	}
	e.timers[tm] = struct{}{}
	a.mu.Unlock()
	tm.t = time.AfterFunc(d, func() {
		if tm.take() {
			_ = Send(r, msg)
		}
	})
	return tm
}

// take removes the timer from its owner and reports whether it was still
// pending.
func (tm *Timer) take() bool {
	a := tm.owner
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ext == nil {
		return false
	}
	if _, ok := a.ext.timers[tm]; !ok {
		return false
	}
	delete(a.ext.timers, tm)
	return true
}

// Stop cancels the timer and reports whether it was still pending: if so,
// its message will not be sent.
func (tm *Timer) Stop() bool {
	if !tm.take() {
		return false
	}
	tm.t.Stop()
	return true
}

// A SpawnOption configures an actor at [System.Spawn]; make one with
// [WithName], [WithMailbox] or [LinkTo]. It is a small value, safe to copy
// and to reuse for many spawns; a spawn applies its options without
// allocating. The zero SpawnOption changes nothing.
type SpawnOption struct {
	set spawnField  // which fields of cfg the option sets
	cfg spawnConfig // their values
}

// spawnField names the fields of a spawnConfig that an option sets.
type spawnField uint8

const (
	setName spawnField = 1 << iota
	setMailbox
	setLink
)

type spawnConfig struct {
	name   string
	bound  int
	policy Overflow
	link   *actor
}

// Overflow says what a bounded mailbox does with a message that does not
// fit.
type Overflow uint8

const (
	// Reject refuses the new message: Send and Call return ErrMailboxFull.
	Reject Overflow = iota
	// DropOldest drops the oldest message still waiting other than an
	// [Exit] or a [Down] (a dead letter, or ErrMailboxFull for its
	// caller) to make room for the new one; if only those wait, the new
	// message is refused as under Reject.
	DropOldest
)

// WithName registers the actor under name; see [System.Register].
func WithName(name string) SpawnOption {
	return SpawnOption{set: setName, cfg: spawnConfig{name: name}}
}

// WithMailbox bounds the mailbox to n messages waiting to be handled, with
// the given overflow policy. The default is an unbounded mailbox: Send
// never fails for a live actor. [Exit] and [Down] messages, which stand
// for signals, are never refused or dropped by the bound (they count
// towards it while they wait).
func WithMailbox(n int, policy Overflow) SpawnOption {
	return SpawnOption{set: setMailbox, cfg: spawnConfig{bound: n, policy: policy}}
}

// LinkTo links the new actor to parent before its Init runs, as OTP's
// spawn_link does.
func LinkTo(parent Ref) SpawnOption {
	return SpawnOption{set: setLink, cfg: spawnConfig{link: parent.a}}
}
