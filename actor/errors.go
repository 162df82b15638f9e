package actor

import (
	"errors"
	"fmt"
)

// Exit reasons with a meaning of their own. An actor's exit reason is an
// error; match these with [errors.Is].
var (
	// Normal is the reason of an actor that finished its work: its
	// handler called [Context.Stop] with Normal (or nil). A Normal exit
	// does not propagate along links.
	Normal = errors.New("actor: normal exit")

	// Shutdown is the reason given by [System.Shutdown] and by supervisors
	// that stop a child in order. Unlike Normal it propagates along links.
	Shutdown = errors.New("actor: shutdown")

	// Killed is the reason of an actor stopped by [Kill]. A kill cannot be
	// trapped and runs no terminate hook; the exit signal that the killed
	// actor then sends to its links carries Killed and is an ordinary
	// one: it can be trapped, and a linked actor that does not trap exits
	// dies of it with its terminate hook run (OTP's `killed`, as opposed
	// to `kill`).
	Killed = errors.New("actor: killed")

	// Moved is the reason of an actor whose work goes on elsewhere, such
	// as a state machine handed over to a new process at a binary restart
	// (upgrade.ErrHandedOff wraps it). It propagates along links like any
	// reason other than Normal; a supervisor does not restart a child that
	// exits with it, whatever the child's restart type, since the child
	// has not ended. For the same reason an actor stopped with it ([Stop],
	// [Context.Stop]) runs no terminate hook; one that dies of a linked
	// actor's Moved has ended, and runs it.
	Moved = errors.New("actor: moved elsewhere")

	// ErrGoexit is the reason of an actor whose handler, Init, or
	// ChangeCode or Inspect function, called runtime.Goexit (as testing's t.FailNow
	// does) instead of returning: the actor exits with it, a call being
	// handled (or the ChangeCode or Inspect) gets an *ExitError with it,
	// and the goroutine that ran the function (a worker, or the caller's
	// of a Call or a ChangeCode run on it) goes on exiting.
	ErrGoexit = errors.New("actor: the handler called runtime.Goexit")
)

// Errors returned by the functions of this package.
var (
	// ErrNoProc is returned by [Send], [Call] and the system operations
	// when the actor has exited (or the Ref is the zero Ref); it is also
	// the reason of a [Down] message for a monitor set on an actor that
	// was already dead, and of the exit signal from a link to one.
	ErrNoProc = errors.New("actor: no such actor")

	// ErrMailboxFull is returned by [Send] and [Call] when the actor's
	// mailbox has reached its bound and its policy is [Reject].
	ErrMailboxFull = errors.New("actor: mailbox full")

	// ErrNoReply is what [Call] returns when the handler returned without
	// replying and without taking the call's [From] for a later reply.
	ErrNoReply = errors.New("actor: call not answered")

	// ErrNotSuspended is returned by [ChangeCode], [ChangeCodeQueued] and
	// [QueuedMessages] for an actor that is not suspended, and by [Resume]
	// for one with no suspension left to end.
	ErrNotSuspended = errors.New("actor: not suspended")

	// ErrStopped is returned by [System.Spawn] once [System.Shutdown] has
	// begun.
	ErrStopped = errors.New("actor: system stopped")

	// ErrNameTaken is returned by [System.Register] and by [System.Spawn]
	// with [WithName] when the name is registered to a live actor.
	ErrNameTaken = errors.New("actor: name already registered")
)

// PanicError is the exit reason of an actor whose handler panicked. The
// process goes on; the actor ends, and its links and monitors learn why.
type PanicError struct {
	Value any    // the value passed to panic
	Stack []byte // the goroutine's stack at the panic
}

func (e *PanicError) Error() string { return fmt.Sprintf("actor: panic: %v", e.Value) }

// Unwrap returns the panic value when it is an error, so that [errors.Is]
// sees through a panic(err).
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// ExitError is the error [Call] returns when the actor exited before it
// answered. It unwraps to the exit reason.
type ExitError struct {
	Actor  Ref   // the actor that exited
	Reason error // its exit reason
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("actor: %v exited: %v", e.Actor, e.Reason)
}

func (e *ExitError) Unwrap() error { return e.Reason }

// IsNormal reports whether an exit reason is Normal (or nil). Only such an
// exit leaves linked actors alone.
func IsNormal(reason error) bool {
	return reason == nil || errors.Is(reason, Normal)
}
