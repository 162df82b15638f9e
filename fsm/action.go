package fsm

import (
	"fmt"
	"time"
)

// An Action is something a handler asks the runtime to do once it has
// returned: reply, postpone the event, insert an event, set or cancel a
// timeout, stop. Handlers return actions as values (in a [Result]) and do
// no I/O themselves, so that a handler is a plain function of the event
// and the data. Actions run in the order given. The zero Action does
// nothing.
type Action struct {
	kind  ActionKind
	name  string        // a generic timeout's name
	after time.Duration // a timeout's delay
	value any           // a reply, a reply error, a stop reason, or an event's payload
}

// ActionKind says what an [Action] does. Code that carries actions
// elsewhere (a plugin binding, a trace) reads an action with
// [Action.Kind], [Action.Name], [Action.After] and [Action.Value], and
// rebuilds it with the constructor of its kind ([Reply], [Timeout] …).
type ActionKind uint8

// The kinds of actions, each named after its constructor.
const (
	ActionNone ActionKind = iota // the zero Action
	ActionReply
	ActionReplyError
	ActionPostpone
	ActionNextEvent
	ActionStateTimeout
	ActionCancelStateTimeout
	ActionEventTimeout
	ActionTimeout
	ActionCancelTimeout
	ActionStop

	// The heads of a Result's actions (see Result): never in an action
	// list that a handler or a Code sees.
	headKeep ActionKind = 0xfe
	headNext ActionKind = 0xff
)

// Kind returns what the action does.
func (a Action) Kind() ActionKind { return a.kind }

// Name returns the name of a generic timeout ([Timeout], [CancelTimeout]),
// else "".
func (a Action) Name() string { return a.name }

// After returns the delay of a timeout ([StateTimeout], [EventTimeout],
// [Timeout]), else 0.
func (a Action) After() time.Duration { return a.after }

// Value returns what the action carries: the value of a [Reply], the error
// of a [ReplyError], the reason of a [Stop] (nil for a normal stop), the
// event payload of a [NextEvent] or a timeout; else nil.
func (a Action) Value() any { return a.value }

// Reply answers the caller of the event being handled with v, which
// [Call] returns. It does nothing for an event that did not come from
// Call, or once the call has been answered. A call that is postponed keeps
// its caller: the handler that takes it later replies.
func Reply(v any) Action { return Action{kind: ActionReply, value: v} }

// ReplyError answers the caller of the event being handled with err, which
// [Call] returns as its error.
func ReplyError(err error) Action { return Action{kind: ActionReplyError, value: err} }

// Postpone keeps the event being handled until the machine's state next
// changes; it is then handled again, before the events waiting in the
// mailbox, in the order events were postponed. A state-enter handler may
// not postpone.
func Postpone() Action { return Action{kind: ActionPostpone} }

// NextEvent inserts an event with the payload ev (of kind [KindInternal]),
// handled right after this one, before postponed events and the mailbox.
// Several are handled in the order given. A state-enter handler may not
// insert events.
func NextEvent(ev any) Action { return Action{kind: ActionNextEvent, value: ev} }

// StateTimeout delivers an event with the payload ev (of kind
// [KindStateTimeout]) after d, unless the state changes first. A machine has one
// state timeout: setting it again replaces it. Set in a [Next] result, it
// belongs to the next state. A d ≤ 0 starts no timer: the event is handled
// once the events this handler inserts or retries have been, before any
// event from the mailbox (OTP's time-out zero), unless the state changes
// first; so an enter handler, which may not insert events, can act in its
// state before any other event comes.
func StateTimeout(d time.Duration, ev any) Action {
	return Action{kind: ActionStateTimeout, after: d, value: ev}
}

// CancelStateTimeout cancels the state timeout, if one runs.
func CancelStateTimeout() Action { return Action{kind: ActionCancelStateTimeout} }

// EventTimeout delivers an event with the payload ev (of kind
// [KindEventTimeout]) after d, unless any event is handled first (an
// inserted or retried one too, and a timeout's). A machine has one event
// timeout: setting it again replaces it. A d ≤ 0 fires only if no inserted
// or retried event comes first, and then before any event from the mailbox.
func EventTimeout(d time.Duration, ev any) Action {
	return Action{kind: ActionEventTimeout, after: d, value: ev}
}

// Timeout sets the generic timeout called name to deliver an event with
// the payload ev (of kind [KindTimeout]) after
// d. It replaces a timeout of that name that runs. Generic timeouts run
// until they fire or are cancelled with [CancelTimeout]; neither events nor
// changes of state cancel them. A d ≤ 0 is handled as [StateTimeout]'s.
// Timeouts due together are handled in the order they were set.
func Timeout(name string, d time.Duration, ev any) Action {
	return Action{kind: ActionTimeout, name: name, after: d, value: ev}
}

// CancelTimeout cancels the generic timeout called name, if it runs.
func CancelTimeout(name string) Action { return Action{kind: ActionCancelTimeout, name: name} }

// Stop ends the machine with reason ([actor.Normal] if nil) once the
// actions before it have run: so a [Reply] before Stop reaches its caller.
// A caller whose call is left unanswered gets an *[actor.ExitError].
func Stop(reason error) Action { return Action{kind: ActionStop, value: reason} }

// String describes the action, for logs and test traces.
func (a Action) String() string {
	switch a.kind {
	case ActionReply:
		return fmt.Sprintf("reply(%v)", a.value)
	case ActionReplyError:
		return fmt.Sprintf("reply_error(%v)", a.value)
	case ActionPostpone:
		return "postpone"
	case ActionNextEvent:
		return fmt.Sprintf("next_event(%v)", a.value)
	case ActionStateTimeout:
		return fmt.Sprintf("state_timeout(%v, %v)", a.after, a.value)
	case ActionCancelStateTimeout:
		return "cancel_state_timeout"
	case ActionEventTimeout:
		return fmt.Sprintf("event_timeout(%v, %v)", a.after, a.value)
	case ActionTimeout:
		return fmt.Sprintf("timeout(%s, %v, %v)", a.name, a.after, a.value)
	case ActionCancelTimeout:
		return fmt.Sprintf("cancel_timeout(%s)", a.name)
	case ActionStop:
		return fmt.Sprintf("stop(%v)", a.value)
	}
	return "none"
}

// err returns the error an action carries, or nil.
func (a Action) err() error {
	err, _ := a.value.(error)
	return err
}
