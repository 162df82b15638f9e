package fsm

import (
	"context"
	"reflect"
	"strconv"
)

// Code is one version of one machine's code: the table of handlers, the
// UPGRADE row and the data format of that version. A running machine holds
// exactly one Code at a time, and [ChangeCode] replaces it.
//
// Code is the seam between the runtime of this package and the places code
// comes from: a [*Machine] defined in Go and compiled into the program, or a
// version served by a plugin process. The runtime never sees a machine's
// data as a Go value: it holds an [Instance] made by the Code, and data
// crosses from one version to another only as msgpack bytes.
//
// A Code must be safe for concurrent use: one Code serves many machines.
// Its methods may block (a plugin round trip) and must honour ctx.
type Code interface {
	// Machine returns the machine's name. Every version of one machine
	// has the same name.
	Machine() string

	// Version returns this version's name, such as "v2".
	Version() string

	// New returns the instance of a new machine with the given ID, at its
	// initial state.
	New(ctx context.Context, id string) (Instance, error)

	// Load returns an instance with the given state and data, the data
	// in this version's own msgpack format (as Instance.Encode made it).
	Load(ctx context.Context, state string, data []byte) (Instance, error)

	// Upgrade is the UPGRADE row: it returns an instance of this version
	// made from the state and the msgpack data of a machine that ran
	// version from. It may change the state.
	Upgrade(ctx context.Context, from, state string, data []byte) (Instance, error)

	// Downgrade is UPGRADE in the other direction: it returns the state
	// and data of in, an instance of this version, in the msgpack format
	// of version to, which Loads them.
	Downgrade(ctx context.Context, to string, in Instance) (state string, data []byte, err error)

	// ConvertEvent returns ev with its payload in the format this
	// version's handler for it expects: unchanged if it already is, or if
	// no handler of this version takes an event of that name. The runtime
	// calls it at a change of code for every event the machine holds
	// (postponed events, pending timeouts' events) and every event
	// waiting in its mailbox, so that a payload that cannot be converted
	// fails the change, not a later event.
	ConvertEvent(ctx context.Context, ev Event) (Event, error)
}

// Instance is one machine's state and data under one version of [Code].
// The runtime calls its methods from one goroutine at a time, and never
// again once it has dropped the instance (after a change of code).
//
// An Instance that holds something while a machine runs it (a share of a
// plugin's process) is also an [io.Closer]. The runtime calls Close once,
// when it drops the instance: when the machine stops (unless it was
// killed), when a change of code replaced it and can no longer be
// reverted, when [Revert] undid the change that made it, or when a Start
// or change of code failed after making it.
type Instance interface {
	// State returns the current state.
	State() string

	// Handle runs the handler for ev in the current state, which updates
	// the state and data, and returns the state it leaves the machine in
	// and the actions to carry out. It returns
	// an error wrapping ErrUnknownEvent or ErrBadEvent when no handler
	// takes ev (the machine goes on), and any other error when the
	// machine must stop (ErrBadResult). A panic in a handler ends the
	// machine.
	Handle(ev Event) (state string, actions []Action, err error)

	// Enter runs the state-enter handler of the current state, entered
	// from prev (equal to the current state when the machine starts), and
	// returns its actions, as Handle does; nil if the state has none. An
	// enter handler may not change the state.
	Enter(prev string) ([]Action, error)

	// Encode returns the data in this version's msgpack format.
	Encode() ([]byte, error)
}

// Kind says how an event reached a machine.
type Kind uint8

const (
	// KindCast is an event sent with [Cast] or [actor.Send]: OTP's cast
	// and info are one kind here, as both are a message in the mailbox.
	KindCast Kind = iota
	// KindCall is an event sent with [Call]: the caller waits for [Reply].
	KindCall
	// KindInternal is an event inserted with [NextEvent].
	KindInternal
	// KindStateTimeout is the event of a [StateTimeout].
	KindStateTimeout
	// KindEventTimeout is the event of an [EventTimeout].
	KindEventTimeout
	// KindTimeout is the event of a named [Timeout].
	KindTimeout
)

var kindNames = [...]string{"cast", "call", "internal", "state_timeout", "event_timeout", "timeout"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// An Event is what the runtime hands to [Instance.Handle]: the payload, a
// Go value that must encode as msgpack (it crosses versions and
// processes), and how it came.
type Event struct {
	Kind    Kind
	Payload any
}

// Name returns the name the event is dispatched by; see [EventName].
func (ev Event) Name() string { return EventName(ev.Payload) }

// Named is implemented by event types that choose the name they are
// dispatched by, instead of their Go type's name.
type Named interface {
	EventName() string
}

// EventName returns the name an event payload is known by across versions
// and processes: its EventName method's result if it has one, else the
// name of its Go type without the package (through pointers), such as
// "KeyPressed". Two versions of a machine may declare the same event with
// different Go types of one name: a payload of the other type is converted
// by msgpack (see [UpgradeEvent]).
func EventName(payload any) string {
	if n, ok := payload.(Named); ok {
		return n.EventName()
	}
	return typeName(reflect.TypeOf(payload))
}

func typeName(t reflect.Type) string {
	if t == nil {
		return "nil"
	}
	for t.Kind() == reflect.Pointer && t.Name() == "" {
		t = t.Elem()
	}
	if n := t.Name(); n != "" {
		return n
	}
	return t.String()
}

// A Snapshot is a machine's state and data at one version, the data as
// msgpack. [Inspect] returns one (in [Info]); [FromSnapshot] starts a
// machine from one, through UPGRADE if it is of an older version.
type Snapshot struct {
	Machine string
	Version string
	State   string
	Data    []byte
}
