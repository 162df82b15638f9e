package supervisor

import (
	"errors"
	"fmt"
	"time"

	"github.com/hotline-go/hotline/actor"
)

// Errors returned by the functions of this package.
var (
	// ErrBadSpec is returned by [Start] and [AddChild] for a spec, a list
	// of specs or a strategy that cannot work: no Start function, a
	// missing or duplicate ID, an unknown restart type or kind, a negative
	// shutdown budget other than BrutalKill, or a simple-one-for-one
	// supervisor not given exactly one spec.
	ErrBadSpec = errors.New("supervisor: invalid child spec")

	// ErrNotFound is returned by [TerminateChild], [RestartChild] and
	// [DeleteChild] when the supervisor has no such child.
	ErrNotFound = errors.New("supervisor: no such child")

	// ErrRunning is returned by [RestartChild] and [DeleteChild] for a
	// child that is running, and by [AddChild] for an ID whose child is.
	ErrRunning = errors.New("supervisor: child is running")

	// ErrRestarting is returned by [RestartChild] and [DeleteChild] for a
	// child waiting to be restarted.
	ErrRestarting = errors.New("supervisor: child is restarting")

	// ErrAlreadyPresent is returned by [AddChild] for an ID whose spec
	// the supervisor holds, with no child running.
	ErrAlreadyPresent = errors.New("supervisor: child spec already present")

	// ErrStrategy is returned by the calls that the supervisor's strategy
	// does not support: [StartChild] on a supervisor that is not
	// simple-one-for-one; [AddChild], [RestartChild], [DeleteChild] and
	// [TerminateChild] by ID on one that is.
	ErrStrategy = errors.New("supervisor: not supported by this supervisor's strategy")

	// ErrTooManyRestarts is what an *[IntensityError] matches.
	ErrTooManyRestarts = errors.New("supervisor: too many restarts")
)

// StartError is the error of a child that failed to start: [Start]'s
// error when a child fails during the supervisor's start (the children
// already started have been stopped, in reverse order), and the error of
// [StartChild], [AddChild] and [RestartChild]. It unwraps to the child's
// error; a panic in the Start function is an *actor.PanicError.
type StartError struct {
	Child string // the ID of the child's spec
	Err   error  // what its Start function returned
}

func (e *StartError) Error() string {
	return fmt.Sprintf("supervisor: child %q failed to start: %v", e.Child, e.Err)
}

func (e *StartError) Unwrap() error { return e.Err }

// IntensityError is the exit reason of a supervisor that reached its
// restart intensity ([WithIntensity]): it names the child whose exit was
// one restart too many, and that exit's reason. It matches
// [ErrTooManyRestarts] and, as OTP's supervisor exits with reason
// shutdown in that case, actor.Shutdown: a transient parent does not
// restart it, a permanent one does. The child's reason is in Last, not in
// the error chain, so that a child's Normal exit cannot make the
// supervisor's exit look normal.
type IntensityError struct {
	Child    string        // the child whose exit was one restart too many
	Restarts int           // restarts counted within Period, that one included
	Period   time.Duration // the intensity period
	Last     error         // that child's exit reason (or start error)
}

func (e *IntensityError) Error() string {
	return fmt.Sprintf("supervisor: too many restarts (%d within %v); last: child %q: %v",
		e.Restarts, e.Period, e.Child, e.Last)
}

func (e *IntensityError) Unwrap() []error { return []error{ErrTooManyRestarts, actor.Shutdown} }
