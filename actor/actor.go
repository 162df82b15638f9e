package actor

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"runtime/debug"
	"sync"
)

// Behavior is an actor's code: Receive handles one message at a time, in
// the order each sender sent them. The Context is valid only during the
// call. A Behavior may also implement [Initializer] and [Terminator].
type Behavior interface {
	Receive(c *Context, msg any)
}

// Initializer is implemented by a Behavior with work to do before its
// first message; see [System.Spawn].
type Initializer interface {
	Init(c *Context) error
}

// Terminator is implemented by a Behavior with work to do when its actor
// exits. Terminate runs once, with the exit reason, on every way out but
// two: a [Kill], and a stop ([Stop] or [Context.Stop]) with a reason that
// wraps [Moved], whose actor goes on elsewhere. An actor that dies of a
// linked actor's exit signal runs it whatever the reason, Killed and Moved
// included. A panic in Terminate is logged.
type Terminator interface {
	Terminate(c *Context, reason error)
}

// BehaviorFunc adapts a function to a Behavior.
type BehaviorFunc func(c *Context, msg any)

// Receive calls f(c, msg).
func (f BehaviorFunc) Receive(c *Context, msg any) { f(c, msg) }

// Messages handled per turn on a goroutine before the actor yields, so
// that one busy actor cannot starve the others.
const throughput = 256

// How many times an actor whose mailbox is empty yields before it lets its
// goroutine go.
const idleSpins = 2

const (
	fScheduled uint32 = 1 << iota // on a goroutine, or about to be
	fSuspended                    // user messages wait until Resume
	fDead                         // exited; sends fail
	fTrap                         // exit signals arrive as Exit messages
)

// The flags' upper bits count the suspensions not yet resumed (each
// Suspend adds one, each Resume takes one away); fSuspended is set exactly
// while that count is above zero, so that the hot paths test one bit.
const (
	suspendShift = 8
	suspendOne   = 1 << suspendShift
	maxSuspends  = 1<<(32-suspendShift) - 1
)

// actor is what a Ref points at. Its fields beyond the first few are
// allocated on first use, so an idle actor that never received a message
// costs one small object.
type actor struct {
	sys *System
	id  uint64
	b   Behavior // touched only by the goroutine running the actor

	mu         sync.Mutex
	flags      uint32   // guarded by mu
	mb         *mailbox // guarded by mu; nil until the first message
	prev, next *actor   // guarded by sys.mu
	ext        *extras  // guarded by mu; nil until used
}

// extras are what most actors never use.
type extras struct {
	parent     *actor // the LinkTo of the spawn; set before the actor is published, never changed
	name       string
	links      linkSet
	watchers   map[uint64]*actor // monitors set on this actor, by id
	monitoring map[uint64]*actor // monitors this actor set, to their targets
	timers     map[*Timer]struct{}
	pending    map[*call]uint64 // calls taken with Context.From, by generation
	done       chan struct{}    // closed when the actor has exited
	reason     error            // the exit reason, once dead
}

// An envelope is a queued user message: the message itself, or a *call
// that carries a Call's message and its reply slot.
type envelope = any

func (a *actor) extLocked() *extras {
	if a.ext == nil {
		a.ext = new(extras)
	}
	return a.ext
}

func (a *actor) hasWorkLocked() bool {
	mb := a.mb
	if mb == nil {
		return false
	}
	if len(mb.sys) > 0 {
		return true
	}
	return a.flags&fSuspended == 0 && (mb.user.n > 0 || mb.cur.n > 0)
}

// push queues a user message and schedules the actor if it was idle.
func (a *actor) push(e envelope) error {
	a.mu.Lock()
	if a.flags&fDead != 0 {
		a.mu.Unlock()
		a.sys.dead(a, letter(e), ErrNoProc)
		return ErrNoProc
	}
	mb := a.mb
	if mb == nil {
		mb = new(mailbox)
		a.mb = mb
	}
	if mb.bound > 0 && mb.queued() >= mb.bound {
		i := -1
		if mb.policy == DropOldest {
			i = mb.user.oldestDroppable()
		}
		if i < 0 {
			a.mu.Unlock()
			a.sys.dead(a, letter(e), ErrMailboxFull)
			return ErrMailboxFull
		}
		old := mb.user.replace(&a.sys.segs, i, e)
		mb.pushed++
		if mb.logDrops {
			mb.dropLog = append(mb.dropLog, i)
		}
		a.mu.Unlock()
		a.failEnvelope(old, ErrMailboxFull)
		return nil
	}
	mb.user.push(&a.sys.segs, e)
	mb.pushed++
	if a.flags&(fScheduled|fSuspended) == 0 {
		a.flags |= fScheduled
		a.mu.Unlock()
		a.sys.schedule(a)
		return nil
	}
	a.mu.Unlock()
	return nil
}

// pushSys queues a system message, which overtakes user messages and is
// handled even while the actor is suspended.
func (a *actor) pushSys(m sysMsg) error {
	a.mu.Lock()
	if a.flags&fDead != 0 {
		a.mu.Unlock()
		return ErrNoProc
	}
	if a.mb == nil {
		a.mb = new(mailbox)
	}
	if m.kind == sigExit {
		m.seq = a.mb.pushed
	}
	a.mb.sys = append(a.mb.sys, m)
	a.mb.sysPending.Store(true)
	if a.flags&fScheduled == 0 {
		a.flags |= fScheduled
		a.mu.Unlock()
		a.sys.schedule(a)
		return nil
	}
	a.mu.Unlock()
	return nil
}

// pushSignal queues msg, the message an exit signal became, where the
// signal arrived among the user messages: after those queued before it,
// before those queued after it (seq is the mailbox's pushed count when the
// signal was queued), so that a sender's messages and its signals keep
// their order. The mailbox's bound does not apply: a signal is not lost
// to a full mailbox. It runs on the actor's own goroutine.
func (a *actor) pushSignal(msg any, seq uint64) {
	a.mu.Lock()
	mb := a.mb
	if mb == nil {
		mb = new(mailbox)
		a.mb = mb
	}
	after := int(mb.pushed - seq) // queued since the signal
	mb.user.insert(&a.sys.segs, msg, max(mb.user.n-after, 0))
	a.mu.Unlock()
}

// run handles the actor's messages until its mailbox is empty, it is
// suspended, or it exits. It runs on one goroutine at a time (fScheduled).
func (a *actor) run(c *Context) {
	n, spins := 0, 0
	var spare []sysMsg // the last batch of system messages, emptied, for reuse
	for {
		a.mu.Lock()
		mb := a.mb
		if spare != nil {
			if mb.sys == nil {
				mb.sys = spare
			}
			spare = nil
		}
		if len(mb.sys) > 0 {
			msgs := mb.sys
			mb.sys = nil
			mb.sysPending.Store(false)
			a.mu.Unlock()
			if a.handleSysBatch(c, msgs) {
				return
			}
			clear(msgs)
			spare = msgs[:0]
			continue
		}
		if a.flags&fSuspended != 0 {
			a.flags &^= fScheduled
			a.mu.Unlock()
			return
		}
		if mb.cur.n == 0 {
			if mb.user.n == 0 && spins < idleSpins {
				// More work often follows at once (a burst, or the next
				// Call of a caller that was just answered): yield a few
				// times before letting the goroutine go.
				spins++
				a.mu.Unlock()
				runtime.Gosched()
				continue
			}
			if mb.user.n == 0 {
				a.flags &^= fScheduled
				a.mu.Unlock()
				return
			}
			mb.cur, mb.user = mb.user, queue{}
			mb.taken = mb.cur.n
			mb.handled.Store(0)
		}
		a.mu.Unlock()
		spins = 0
		if a.drain(c, mb, &n) {
			return
		}
		if n >= throughput {
			n = 0
			runtime.Gosched()
		}
	}
}

// handleSysBatch handles a batch of system messages and reports whether
// the actor exited. The requests left when it did are answered
// (dropSys): also when the function of a ChangeCode or an Inspect ended
// the goroutine with runtime.Goexit (the actor has exited then: callFn).
func (a *actor) handleSysBatch(c *Context, msgs []sysMsg) (exited bool) {
	killFirst(msgs)
	i := 0
	defer func() {
		if i < len(msgs) {
			a.dropSys(msgs[i+1:])
		}
	}()
	for ; i < len(msgs); i++ {
		if a.handleSys(c, &msgs[i], i == len(msgs)-1) {
			exited = true
			break
		}
	}
	return exited
}

// killFirst moves the first kill in msgs to the front: a kill overtakes the
// system messages queued before it, so that a Stop or an exit signal that
// waited behind a long handler does not run the terminate hook a kill skips.
func killFirst(msgs []sysMsg) {
	for i := range msgs {
		if msgs[i].kind == sysKill {
			msgs[0], msgs[i] = msgs[i], msgs[0]
			return
		}
	}
}

// drain handles the batch until it ends, a system message waits, or the
// turn's quota is used, and reports whether the actor exited.
func (a *actor) drain(c *Context, mb *mailbox, n *int) (exited bool) {
	returned := false
	defer func() {
		if v := recover(); v != nil {
			a.died(c, newPanicError(v))
			exited = true
		} else if !returned {
			a.died(c, ErrGoexit)
		}
	}()
	// The Behavior and the bound are read once per batch: a.b shares its
	// cache line with a.mu, and mb.bound with the queue senders append
	// to, so that reading them per message would take that line from the
	// sender's core each time. Neither changes during a batch: a change
	// of code is a system message, which ends the batch.
	b, bounded, pool := a.b, mb.bound > 0, &a.sys.segs
	for mb.cur.n > 0 && *n < throughput && !mb.sysPending.Load() {
		msg := mb.cur.pop(pool)
		if bounded {
			mb.handled.Add(1)
		}
		*n++
		c.detached, c.stop = false, nil
		if cl, ok := msg.(*call); ok {
			c.call, c.gen, msg = cl, cl.state.Load()>>1, cl.msg
		}
		b.Receive(c, msg)
		if c.call != nil {
			if !c.detached {
				c.call.reply(c.gen, nil, ErrNoReply)
			}
			c.call = nil
		}
		if c.stop != nil {
			returned = true
			a.stop(c, c.stop)
			return true
		}
	}
	returned = true
	return false
}

// receiveNow hands msg to the Behavior at once, as drain hands it the next
// user message, and reports whether the actor exited.
func (a *actor) receiveNow(c *Context, msg any) (exited bool) {
	returned := false
	defer func() {
		if v := recover(); v != nil {
			a.died(c, newPanicError(v))
			exited = true
		} else if !returned {
			a.died(c, ErrGoexit)
		}
	}()
	c.call, c.detached, c.stop = nil, false, nil
	a.b.Receive(c, msg)
	returned = true
	if c.stop != nil {
		a.stop(c, c.stop)
		return true
	}
	return false
}

// claim takes an idle actor (on no goroutine, not suspended, nothing
// queued) for the caller's goroutine, as a worker takes a scheduled one,
// and reports whether it did. The caller must then let it go with release
// unless it exited.
func (a *actor) claim() bool {
	a.mu.Lock()
	ok := a.claimLocked()
	a.mu.Unlock()
	return ok
}

// release lets go of an actor run on a goroutine that is not a worker
// (claim, inline): idle if nothing waits, else handed to a worker for what
// queued meanwhile.
func (a *actor) release() {
	a.mu.Lock()
	work := a.hasWorkLocked()
	if !work {
		a.flags &^= fScheduled
	}
	a.mu.Unlock()
	if work {
		a.sys.schedule(a)
	}
}

// runCall handles one Call on the caller's goroutine, for an actor claimed
// by it: as drain handles a call on a worker, then release.
func (a *actor) runCall(cl *call, gen uint64) {
	c := a.sys.getContext()
	c.a = a
	if !a.handleCall(c, cl, gen) {
		a.release()
	}
	a.sys.putContext(c)
}

// died ends the actor whose Behavior did not return: it panicked (reason
// a *PanicError, made in the deferred recover, so that its stack is still
// the panic's) or called runtime.Goexit (ErrGoexit; the goroutine goes on
// exiting once the actor has). A call being handled gets the *ExitError.
func (a *actor) died(c *Context, reason error) {
	if c.call != nil && !c.detached {
		c.call.reply(c.gen, nil, &ExitError{Actor: Ref{a}, Reason: reason})
	}
	c.call = nil
	a.terminate(c, reason)
}

// handleCall runs the Behavior on one call and reports whether the actor
// exited.
func (a *actor) handleCall(c *Context, cl *call, gen uint64) (exited bool) {
	returned := false
	defer func() {
		if v := recover(); v != nil {
			a.died(c, newPanicError(v))
			exited = true
		} else if !returned {
			a.died(c, ErrGoexit)
		}
	}()
	c.call, c.gen, c.detached, c.stop = cl, gen, false, nil
	a.b.Receive(c, cl.msg)
	returned = true
	if !c.detached {
		c.call.reply(c.gen, nil, ErrNoReply)
	}
	c.call = nil
	if c.stop != nil {
		a.stop(c, c.stop)
		return true
	}
	return false
}

func newPanicError(v any) *PanicError {
	return &PanicError{Value: v, Stack: debug.Stack()}
}

// failEnvelope answers a queued call that will never be handled, or counts
// a dead letter.
func (a *actor) failEnvelope(e envelope, reason error) {
	if cl, ok := e.(*call); ok {
		err := reason
		if !errors.Is(reason, ErrMailboxFull) {
			err = &ExitError{Actor: Ref{a}, Reason: reason}
		}
		cl.reply(cl.state.Load()>>1, nil, err)
		return
	}
	a.sys.dead(a, e, reason)
}

// letter is the message an envelope carries.
func letter(e envelope) any {
	if cl, ok := e.(*call); ok {
		return cl.msg
	}
	return e
}

// terminate ends the actor on its own goroutine: terminate hook, then the
// bookkeeping of exit. A kill skips it, and calls exit alone.
func (a *actor) terminate(c *Context, reason error) {
	if reason == nil {
		reason = Normal
	}
	if t, ok := a.b.(Terminator); ok {
		a.runTerminate(t, c, reason)
	}
	a.exit(reason, c)
}

// stop is terminate for an actor asked to stop, by [Stop] or by its own
// [Context.Stop]: one stopped with a reason that wraps [Moved] goes on
// elsewhere and has not ended, so its terminate hook does not run. An
// actor that dies of a linked actor's Moved runs its hook (terminate).
func (a *actor) stop(c *Context, reason error) {
	if reason != nil && errors.Is(reason, Moved) {
		a.exit(reason, c)
		return
	}
	a.terminate(c, reason)
}

func (a *actor) runTerminate(t Terminator, c *Context, reason error) {
	returned := false
	defer func() {
		if v := recover(); v != nil {
			a.sys.logger.Error("actor: panic in terminate", "actor", Ref{a}, "panic", v)
		} else if !returned {
			// runtime.Goexit: the actor exits as it would have, and the
			// goroutine goes on exiting.
			a.sys.logger.Error("actor: terminate called runtime.Goexit", "actor", Ref{a})
			a.exit(reason, c)
		}
	}()
	t.Terminate(c, reason)
	returned = true
}

// abandon ends an actor whose Init failed. Spawn's caller has the error,
// so the parent of a LinkTo hears nothing (that link is dropped first),
// and nothing is logged; but what the actor linked to during Init (a child
// it spawned with LinkTo, say) gets its exit signal, and a monitor set on
// it meanwhile its Down, as for any exit: nothing it started outlives it
// unnoticed.
func (a *actor) abandon(reason error) {
	a.mu.Lock()
	var p *actor
	if a.ext != nil {
		p = a.ext.parent
		if p != nil {
			a.ext.links.remove(p)
		}
	}
	a.mu.Unlock()
	if p != nil {
		p.mu.Lock()
		if p.ext != nil {
			p.ext.links.remove(a)
		}
		p.mu.Unlock()
	}
	a.exitWith(reason, nil, queueSignal)
}

// exit marks the actor dead, answers or dead-letters what it still held,
// and tells its links and monitors; c is the Context of the goroutine it
// exits on.
func (a *actor) exit(reason error, c *Context) {
	a.exitWith(reason, c, c.signal())
}

// exitWith is exit with the way links are told; c is nil for an actor
// whose Init failed, whose exit is not logged.
func (a *actor) exitWith(reason error, c *Context, sig signalMode) {
	a.mu.Lock()
	a.flags |= fDead
	a.flags &^= fScheduled
	mb := a.mb
	a.mb = nil
	e := a.extLocked()
	e.reason = reason
	links, watchers, monitoring, timers, pending := e.links, e.watchers, e.monitoring, e.timers, e.pending
	e.links, e.watchers, e.monitoring, e.timers, e.pending = linkSet{}, nil, nil, nil, nil
	name := e.name
	a.mu.Unlock()
	// Leave the registry and the count before anyone hears of the exit.
	a.sys.remove(a, name)

	// Most actors have none of these maps: ranging over a nil map still
	// costs a call, so each range is guarded.
	if len(timers) > 0 {
		for t := range timers {
			t.t.Stop()
		}
	}
	if mb != nil {
		fail := func(e envelope) { a.failEnvelope(e, reason) }
		mb.cur.drain(&a.sys.segs, fail)
		mb.user.drain(&a.sys.segs, fail)
		a.dropSys(mb.sys)
	}
	if len(pending) > 0 {
		for cl, gen := range pending {
			cl.reply(gen, nil, &ExitError{Actor: Ref{a}, Reason: reason})
		}
	}
	if len(monitoring) > 0 {
		for id, t := range monitoring {
			t.mu.Lock()
			if t.ext != nil {
				delete(t.ext.watchers, id)
			}
			t.mu.Unlock()
		}
	}
	var held *actor // a link claimed for this goroutine: see handOff
	var seq uint64
	if links.one != nil {
		held, seq = a.signalLink(links.one, sig, reason)
	}
	if len(links.many) > 0 {
		for l := range links.many {
			a.signalLink(l, min(sig, queueSignal), reason)
		}
	}
	if len(watchers) > 0 {
		for id, w := range watchers {
			a.tellWatcher(w, id, reason)
		}
	}
	if c != nil {
		a.logExit(reason)
	}
	a.mu.Lock()
	if e.done != nil {
		close(e.done)
	}
	e.done = closedChan
	a.mu.Unlock()
	if held != nil {
		a.handOff(held, reason, c, seq)
	}
}

// tellWatcher delivers the Down of monitor id, set by w on a, which has
// exited with reason, and ends the monitor: if w still holds it. The check
// and the delivery are one step under w's lock, so that once w's Demonitor
// has returned no Down of that monitor can arrive.
func (a *actor) tellWatcher(w *actor, id uint64, reason error) {
	w.mu.Lock()
	if w.ext == nil || w.ext.monitoring[id] != a {
		w.mu.Unlock()
		return
	}
	delete(w.ext.monitoring, id)
	run := w.deliverLocked(Down{Monitor: MonitorRef{id: id, target: a}, Actor: Ref{a}, Reason: reason})
	w.mu.Unlock()
	if run {
		w.sys.schedule(w)
	}
}

// deliver queues msg, a message that stands for a signal (a Down), last in
// the mailbox, whatever its bound: a signal is not lost to a full mailbox.
func (a *actor) deliver(msg any) {
	a.mu.Lock()
	run := a.deliverLocked(msg)
	a.mu.Unlock()
	if run {
		a.sys.schedule(a)
	}
}

// deliverLocked is deliver with a's lock held; it reports whether the
// caller must schedule a.
func (a *actor) deliverLocked(msg any) (run bool) {
	if a.flags&fDead != 0 {
		return false
	}
	mb := a.mb
	if mb == nil {
		mb = new(mailbox)
		a.mb = mb
	}
	mb.user.push(&a.sys.segs, msg)
	mb.pushed++
	if a.flags&(fScheduled|fSuspended) == 0 {
		a.flags |= fScheduled
		return true
	}
	return false
}

// logExit reports an exit that was not orderly: a panic as an error with
// its stack, any other abnormal reason as info. A logger that would drop
// both costs no look into the reason.
func (a *actor) logExit(reason error) {
	l := a.sys.logger
	if ctx := context.Background(); !l.Enabled(ctx, slog.LevelInfo) && !l.Enabled(ctx, slog.LevelError) {
		return
	}
	var p *PanicError
	switch {
	case errors.As(reason, &p):
		l.Error("actor: exited", "actor", Ref{a}, "reason", reason, "stack", string(p.Stack))
	case !errors.Is(reason, Normal) && !errors.Is(reason, Shutdown):
		l.Info("actor: exited", "actor", Ref{a}, "reason", reason)
	}
}

// signalLink sends l the exit signal of a, which has exited, as sig says;
// it returns l when it claimed l to hand it the signal on this goroutine
// (see handOff). The link stays in l's set until l handles the signal,
// which removes it (see sysMsg.link).
func (a *actor) signalLink(l *actor, sig signalMode, reason error) (held *actor, seq uint64) {
	l.mu.Lock()
	if sig == handOffSignal && l.claimLocked() {
		if l.mb != nil {
			seq = l.mb.pushed
		}
		l.mu.Unlock()
		return l, seq
	}
	l.mu.Unlock()
	_ = l.pushSys(sysMsg{kind: sigExit, from: a, reason: reason, link: true})
	return nil, 0
}

// closedChan stands for the done channel of an actor nobody waited for.
// It is never written after init.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()
