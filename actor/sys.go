package actor

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
)

// System messages overtake user messages: they are handled before the next
// user message, and also while the actor is suspended.

type sysKind uint8

const (
	sysSuspend sysKind = iota
	sysResume
	sysChangeCode
	sysInspect
	sysStop
	sysKill
	sigExit // an exit signal from a link, or from SendExit
)

type sysMsg struct {
	kind sysKind
	from *actor // sigExit: the sender, nil when sent from outside any actor
	// link, for a sigExit: the signal is from's exit, due to the link
	// between from and this actor. It is acted on only if the link is
	// still there when the signal is handled, and it ends the link: an
	// Unlink made meanwhile (by a handler that ran before the signal was
	// handled) drops it, as OTP's unlink guarantees.
	link   bool
	seq    uint64 // for a sigExit: see actor.pushSignal
	reason error
	fn     func(Behavior) (Behavior, error)
	qfn    func(Behavior, []Queued) (Behavior, []any, error) // a ChangeCodeQueued's, instead of fn
	done   chan error                                        // answers the request, if anyone waits
	// claim, for a request whose caller can give up (its ctx can end): 0
	// while it waits, claimTaken once the actor handles it, claimDropped
	// once its caller gave up, and the actor then skips it. So a request
	// whose call returned ctx's error was not carried out, and one that
	// was is answered.
	claim *atomic.Int32
}

const (
	claimTaken   = 1
	claimDropped = 2
)

// handleSys handles one system message on the actor's goroutine and reports
// whether the actor exited. last says that no other system message of the
// batch follows it.
func (a *actor) handleSys(c *Context, m *sysMsg, last bool) bool {
	if m.claim != nil && !m.claim.CompareAndSwap(0, claimTaken) {
		return false // its caller gave up
	}
	var err error
	switch m.kind {
	case sysSuspend:
		a.mu.Lock()
		err = a.suspendLocked()
		a.mu.Unlock()
	case sysResume:
		a.mu.Lock()
		err = a.resumeLocked()
		a.mu.Unlock()
	case sysChangeCode:
		a.mu.Lock()
		suspended := a.flags&fSuspended != 0
		a.mu.Unlock()
		if !suspended {
			err = ErrNotSuspended
			break
		}
		err = a.runFn(m)
	case sysInspect:
		err = a.runFn(m)
	case sysStop:
		c.call = nil
		a.stop(c, m.reason)
		answer(m.done, nil)
		return true
	case sysKill:
		a.exit(Killed, c)
		answer(m.done, nil)
		return true
	case sigExit:
		a.mu.Lock()
		if m.link {
			if a.ext == nil || !a.ext.links.has(m.from) {
				a.mu.Unlock()
				break // unlinked since: the signal has no effect
			}
			a.ext.links.remove(m.from)
		}
		trap := a.flags&fTrap != 0
		// When nothing else waits, the Exit message would be the very next
		// one handled: hand it over at once rather than through the
		// mailbox. A supervisor restarts a child this way without a trip
		// through its own queue.
		now := trap && last && a.flags&fSuspended == 0 &&
			(a.mb == nil || len(a.mb.sys) == 0 && a.mb.user.n == 0 && a.mb.cur.n == 0)
		a.mu.Unlock()
		switch {
		case now:
			return a.receiveNow(c, Exit{From: Ref{m.from}, Reason: m.reason})
		case trap:
			a.pushSignal(Exit{From: Ref{m.from}, Reason: m.reason}, m.seq)
		case !IsNormal(m.reason):
			c.call = nil
			a.terminate(c, m.reason)
			return true
		}
	}
	answer(m.done, err)
	return false
}

func answer(done chan error, err error) {
	if done != nil {
		done <- err
	}
}

// runFn runs the function of a ChangeCode or an Inspect on the Behavior
// and, for a change, installs the Behavior it returns.
func (a *actor) runFn(m *sysMsg) error {
	nb, err := a.callFn(m)
	if err != nil || m.kind != sysChangeCode {
		return err
	}
	if nb == nil {
		return errors.New("actor: change code returned a nil behavior")
	}
	a.b = nb
	return nil
}

// callFn runs m's function on the Behavior, a panic as a *PanicError. A
// function that calls runtime.Goexit ends the actor with ErrGoexit (its
// Behavior may be half changed), and its requester is told.
func (a *actor) callFn(m *sysMsg) (nb Behavior, err error) {
	returned := false
	defer func() {
		if v := recover(); v != nil {
			err = newPanicError(v)
		} else if !returned {
			answer(m.done, &ExitError{Actor: Ref{a}, Reason: ErrGoexit})
			c := a.sys.getContext()
			c.a = a
			a.terminate(c, ErrGoexit)
		}
	}()
	if m.qfn != nil {
		nb, err = a.changeQueued(m.qfn, a.b)
	} else {
		nb, err = m.fn(a.b)
	}
	returned = true
	return nb, err
}

// errTooManySuspends is Suspend's error for an actor already suspended
// maxSuspends times: more would overflow the count.
var errTooManySuspends = fmt.Errorf("actor: suspended %d times without a resume", maxSuspends)

// suspendLocked counts one more suspension.
func (a *actor) suspendLocked() error {
	if a.flags>>suspendShift == maxSuspends {
		return errTooManySuspends
	}
	a.flags += suspendOne
	a.flags |= fSuspended
	return nil
}

// resumeLocked ends one suspension, and the last one lets user messages
// through again. It returns ErrNotSuspended if there is none.
func (a *actor) resumeLocked() error {
	if a.flags&fSuspended == 0 {
		return ErrNotSuspended
	}
	a.flags -= suspendOne
	if a.flags>>suspendShift == 0 {
		a.flags &^= fSuspended
	}
	return nil
}

// flip suspends or resumes an actor that is on no goroutine, at once, under
// its lock: such an actor is between messages, so there is nothing to wait
// for. ok is false when the request must go through the mailbox (the
// actor is running, or system messages wait before this one).
func (a *actor) flip(suspend bool) (err error, ok bool) {
	a.mu.Lock()
	if a.flags&(fDead|fScheduled) != 0 || (a.mb != nil && len(a.mb.sys) > 0) {
		a.mu.Unlock()
		return nil, false
	}
	if suspend {
		err = a.suspendLocked()
		a.mu.Unlock()
		return err, true
	}
	err = a.resumeLocked()
	work := a.hasWorkLocked()
	if work {
		a.flags |= fScheduled
	}
	a.mu.Unlock()
	if work {
		a.sys.schedule(a)
	}
	return err, true
}

// inline runs a ChangeCode or Inspect on the caller's goroutine when the
// actor is suspended and on no goroutine: it claims the actor as a worker
// would (fScheduled), so that nothing else runs it meanwhile, and saves the
// two hand-offs of a request. This is what makes a release handler's cut
// of many suspended machines cheap. ok is false when the request must go
// through the mailbox.
func (a *actor) inline(m sysMsg) (err error, ok bool) {
	a.mu.Lock()
	if a.flags&(fDead|fScheduled|fSuspended) != fSuspended || (a.mb != nil && len(a.mb.sys) > 0) {
		a.mu.Unlock()
		return nil, false
	}
	a.flags |= fScheduled
	a.mu.Unlock()

	err = a.runFn(&m)
	a.release()
	return err, true
}

// dropSys answers the system requests an exited actor will not handle.
func (a *actor) dropSys(msgs []sysMsg) {
	for _, m := range msgs {
		if m.kind == sysStop || m.kind == sysKill {
			answer(m.done, nil)
		} else {
			answer(m.done, ErrNoProc)
		}
	}
}

// request sends a system message and waits for its answer.
func request(ctx context.Context, r Ref, m sysMsg) error {
	if r.a == nil {
		return ErrNoProc
	}
	switch m.kind {
	case sysSuspend, sysResume:
		if err, ok := r.a.flip(m.kind == sysSuspend); ok {
			return err
		}
	case sysChangeCode, sysInspect:
		if err, ok := r.a.inline(m); ok {
			return err
		}
	}
	m.done = make(chan error, 1)
	if ctx.Done() != nil && m.kind != sysResume {
		m.claim = new(atomic.Int32)
	}
	if err := r.a.pushSys(m); err != nil {
		return err
	}
	select {
	case err := <-m.done:
		return err
	case <-ctx.Done():
		if m.claim != nil && !m.claim.CompareAndSwap(0, claimDropped) {
			return <-m.done // the actor took it: its answer comes
		}
		return fmt.Errorf("actor: %v: %w", r, ctx.Err())
	}
}

// Suspend returns once the actor is between messages and has stopped
// handling user messages, which go on queuing until [Resume]. System
// operations (ChangeCode, Inspect, Stop, Kill, SendExit and links' exit signals) still reach a
// suspended actor. It returns ErrNoProc if the actor has exited. If ctx
// ends while the request waits for a busy actor, Suspend returns ctx's
// error and the request is dropped: the actor is not suspended by it
// later (Suspend, ChangeCode and Inspect are carried out exactly when
// they do not return ctx's error). Resume, Stop and Kill stand once asked.
//
// Suspensions are counted, so that callers that do not know of each
// other (a release handler, a binary restart's handoff, an operator) can
// each suspend an actor: every Suspend that returned nil is ended by one
// Resume, and the actor handles user messages again only once all of
// them are. An actor can be suspended 16,777,215 times over; one more
// Suspend fails and counts nothing.
func Suspend(ctx context.Context, r Ref) error {
	return request(ctx, r, sysMsg{kind: sysSuspend})
}

// Resume ends one suspension made by [Suspend]. When it ends the last one,
// the actor handles its user messages again, starting with those that
// queued while it was suspended; until then it stays suspended for the
// other callers that suspended it. It returns ErrNotSuspended, and does
// nothing, if the actor is not suspended (more Resumes than Suspends), and
// ErrNoProc if it has exited. A Resume stands once asked: if ctx ends
// while it waits for a busy actor, Resume returns ctx's error, and the
// suspension is ended all the same.
func Resume(ctx context.Context, r Ref) error {
	return request(ctx, r, sysMsg{kind: sysResume})
}

// ChangeCode replaces the Behavior of a suspended actor with what fn
// returns, with the actor to itself: on its own goroutine, or on the
// caller's when the actor is on none (a suspended actor usually is not). If fn returns an error or panics,
// the actor keeps its Behavior and ChangeCode returns the error (a panic as
// a *[PanicError]). It returns ErrNotSuspended unless the actor was
// suspended by [Suspend]. This is the primitive that live upgrades build on.
// If ctx ends before the actor takes the change, ChangeCode returns ctx's
// error and fn never runs; once taken, ChangeCode waits for fn and
// returns its result, whatever ctx does meanwhile.
func ChangeCode(ctx context.Context, r Ref, fn func(old Behavior) (Behavior, error)) error {
	return request(ctx, r, sysMsg{kind: sysChangeCode, fn: fn})
}

// Inspect runs fn with the actor's Behavior between two messages (also
// while suspended), with the actor to itself as ChangeCode does, and
// returns fn's error. fn must not keep the Behavior.
func Inspect(ctx context.Context, r Ref, fn func(b Behavior) error) error {
	return request(ctx, r, sysMsg{kind: sysInspect, fn: func(b Behavior) (Behavior, error) {
		return b, fn(b)
	}})
}

// Stop asks the actor to exit with reason (Normal if nil) after the message
// it is handling, runs its terminate hook, and waits until it has exited.
// It returns ErrNoProc if the actor had already exited. The request stands
// when ctx ends first: with a ctx already done, Stop asks and returns at
// once, so that many actors can be asked before waiting for each with
// [Wait]. An actor stops
// itself with [Context.Stop]: Stop, like every call here that waits for the
// actor, would wait for itself until ctx ends.
func Stop(ctx context.Context, r Ref, reason error) error {
	if r.a == nil {
		return ErrNoProc
	}
	return stopActor(ctx, r.a, reason)
}

func stopActor(ctx context.Context, a *actor, reason error) error {
	if reason == nil {
		reason = Normal
	}
	err := a.pushSys(sysMsg{kind: sysStop, reason: reason})
	if werr := a.wait(ctx); werr != nil {
		return werr
	}
	return err
}

// Kill ends the actor with reason [Killed] as soon as the message it is
// handling returns; a kill cannot be trapped, and no terminate hook runs.
// A kill overtakes the system messages still queued, a [Stop] among them,
// so a kill sent after a stop that timed out skips the terminate hook,
// unless the hook is already running: Go cannot preempt a handler or a
// hook, and one that never returns is never killed. Kill does not wait;
// use [Wait] for that.
func Kill(r Ref) error {
	if r.a == nil {
		return ErrNoProc
	}
	return r.a.pushSys(sysMsg{kind: sysKill})
}

// SendExit sends the actor an exit signal with reason, as a linked actor's
// exit would: an actor that traps exits gets an [Exit] message (with a zero
// From); otherwise a reason other than Normal ends it with that reason.
func SendExit(r Ref, reason error) error {
	if r.a == nil {
		return ErrNoProc
	}
	if reason == nil {
		reason = Normal
	}
	return r.a.pushSys(sysMsg{kind: sigExit, reason: reason})
}

// Wait waits until the actor has exited and returns its exit reason. err is
// ctx's error if ctx ends first, or ErrNoProc for the zero Ref.
func Wait(ctx context.Context, r Ref) (reason error, err error) {
	if r.a == nil {
		return nil, ErrNoProc
	}
	if err := r.a.wait(ctx); err != nil {
		return nil, err
	}
	r.a.mu.Lock()
	defer r.a.mu.Unlock()
	return r.a.ext.reason, nil
}

func (a *actor) wait(ctx context.Context) error {
	a.mu.Lock()
	e := a.extLocked()
	if e.done == nil {
		e.done = make(chan struct{})
	}
	done := e.done
	a.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("actor: waiting for %v: %w", Ref{a}, ctx.Err())
	}
}

// A Queued is a message waiting in a suspended actor's mailbox; see
// [QueuedMessages].
type Queued struct {
	Msg  any
	Call bool // sent with Call: its caller waits for a reply
	// Signal says that Msg is an [Exit] or a [Down] (not sent with Call):
	// the message of a trapped exit signal or of a monitor, whose Refs
	// name actors of this System and mean nothing outside it. The mailbox
	// cannot tell such a value sent with [Send] from a signal's, and
	// treats both as signals (a bound neither refuses nor drops them).
	Signal bool
}

// QueuedMessages returns the messages waiting in the mailbox of a
// suspended actor, oldest first, without taking them: the actor handles
// them as usual once resumed. Read on the actor's own goroutine, the list
// is exact until [Resume]; a Send meanwhile adds to the mailbox, not to the
// list. This is what a binary restart hands to the new process; the
// messages that stand for signals ([Exit], [Down]) are marked
// ([Queued.Signal]), since their Refs cannot follow. It returns
// ErrNotSuspended unless the actor was suspended by [Suspend], and
// ErrNoProc if it has exited.
func QueuedMessages(ctx context.Context, r Ref) ([]Queued, error) {
	if r.a == nil {
		return nil, ErrNoProc
	}
	a := r.a
	var out []Queued
	err := request(ctx, r, sysMsg{kind: sysInspect, fn: func(b Behavior) (Behavior, error) {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.flags&fSuspended == 0 {
			return b, ErrNotSuspended
		}
		if mb := a.mb; mb != nil {
			out = make([]Queued, 0, mb.cur.n+mb.user.n)
			out = mb.cur.appendTo(out)
			out = mb.user.appendTo(out)
		}
		return b, nil
	}})
	if err != nil {
		return nil, err
	}
	return out, nil
}
