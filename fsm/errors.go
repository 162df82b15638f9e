package fsm

import (
	"errors"
	"fmt"
)

// Errors returned by the functions of this package. Match them with
// [errors.Is]: they are usually wrapped with the machine and the event.
var (
	// ErrUnknownEvent is what a caller gets from [Call] for an event that
	// the machine's current state has no handler for, and no any-state
	// handler either. A cast of such an event is dropped, logged and
	// counted in [Info.Dropped]; the machine goes on.
	ErrUnknownEvent = errors.New("fsm: no handler for event")

	// ErrBadEvent is like ErrUnknownEvent for an event whose payload is of
	// another Go type than the handler's and could not be converted to it
	// (see [UpgradeEvent]).
	ErrBadEvent = errors.New("fsm: cannot convert event")

	// ErrBadData is returned (wrapped) when a machine's data does not
	// encode or decode as msgpack: by [Code.Load], by [Start] with
	// [FromSnapshot], and inside an [*UpgradeError].
	ErrBadData = errors.New("fsm: bad machine data")

	// ErrBadResult ends a machine whose handler returned the zero
	// [Result], or whose state-enter handler changed the state or used
	// [Postpone] or [NextEvent], which enter handlers may not.
	ErrBadResult = errors.New("fsm: bad handler result")

	// ErrSignalQueued is returned (wrapped, naming each message) by
	// [CaptureSuspended] for a machine whose mailbox holds an
	// [actor.Exit] or an [actor.Down] ([actor.Queued.Signal]): another
	// actor sent it one, since a machine traps no exits and monitors
	// nothing. Its Refs name actors of this process, which an [Image]
	// cannot carry and which mean nothing in another. The machine is left
	// as it was; resumed, it handles the message, and a later capture
	// succeeds.
	ErrSignalQueued = errors.New("fsm: a signal's message cannot leave the process")

	// ErrNotMachine is returned by the functions of this package given a
	// Ref to an actor that is not a state machine started with [Start].
	ErrNotMachine = errors.New("fsm: not a state machine")

	// ErrWrongMachine is returned by [ChangeCode] and [Start] with
	// [FromSnapshot] when the code or the snapshot is of another machine.
	ErrWrongMachine = errors.New("fsm: code of another machine")

	// ErrSameVersion is returned by [ChangeCode] when the machine already
	// runs that version.
	ErrSameVersion = errors.New("fsm: machine already runs this version")

	// ErrNoRevert is returned by [Revert] when the machine has no change
	// of code to undo: none was made, or it has handled an event since.
	ErrNoRevert = errors.New("fsm: no code change to revert")
)

// UpgradeError is the error of a change of code that failed: the UPGRADE
// (or downgrade) handler returned an error or panicked, the data did not
// decode, or a held event did not convert. The machine still runs its old
// version with its data unchanged. It unwraps to the reason; a panic is an
// *[actor.PanicError].
type UpgradeError struct {
	Machine string // the machine's name
	ID      string // the machine's ID, as given to [WithID]
	From    string // the version the machine runs, and keeps
	To      string // the version it was to run
	Down    bool   // the change was a downgrade
	Err     error  // why it failed
}

func (e *UpgradeError) Error() string {
	dir := "upgrade"
	if e.Down {
		dir = "downgrade"
	}
	id := ""
	if e.ID != "" {
		id = " " + e.ID
	}
	return fmt.Sprintf("fsm: %s%s: %s %s -> %s: %v", e.Machine, id, dir, e.From, e.To, e.Err)
}

func (e *UpgradeError) Unwrap() error { return e.Err }
