// Package fsm runs event-driven state machines, after Erlang/OTP's
// gen_statem, on the actors of package [actor], with code that can be
// replaced while they run.
//
// A machine is a table: for each state and each type of event, a handler;
// plus one row, UPGRADE, that turns the data of the previous version of
// the machine's code into the data of this one. Each version of the code
// is declared once, typed by its data:
//
//	m := fsm.Define("phone", "v1", "off", Phone{})
//	fsm.On(m, "off", func(k KeyPressed, p Phone) fsm.Result[Phone] {
//		return fsm.Next("dialing", Phone{Digits: []int{k.Digit}}, fsm.StateTimeout(10*time.Second, GiveUp{}))
//	})
//	fsm.OnAny(m, func(_ Hangup, p Phone) fsm.Result[Phone] { return fsm.Next("off", Phone{}) })
//	m.Enter("dialing", func(prev string, p Phone) fsm.Result[Phone] { ... })
//	m.OnUpgrade(func(from, state string, data msgpack.RawMessage) (string, Phone, error) { ... })
//
//	ref, err := fsm.Start(ctx, sys, m, fsm.WithID("555-0100"))
//
// doc/fsm.md walks through a whole machine and its upgrade.
//
// # Handlers
//
// A handler is a plain function of the event and the data. It returns a
// [Result]: [Next] state and data, [Keep] the state, or [StopWith] a
// reason; with [Action] values for the runtime to carry out after it
// returns: [Reply], [Postpone], [NextEvent], [StateTimeout],
// [EventTimeout], [Timeout] and [CancelTimeout], [Stop]. Handlers do no
// I/O and start nothing: what they decide is data, which makes them easy
// to test and lets the runtime move a machine to other code between two
// events.
//
// Events are Go values of a type per event, dispatched by type: [On] sets
// the handler of an event type in one state, [OnAny] in every state without
// one of its own, [Machine.OnUnknown] takes what nothing else takes. Any
// message the machine's actor receives is an event: sent with [Cast] (or
// [actor.Send]; OTP's cast and info are one kind here) or [Call], inserted
// with [NextEvent], or delivered by a timeout. An event that no handler
// takes is an error for its caller ([ErrUnknownEvent]), and a logged and
// counted drop for a cast ([Info].Dropped): it never ends the machine
// unless [Machine.OnUnknown] says so. A handler that panics ends the
// machine with an *[actor.PanicError]; links, monitors and supervisors
// learn it.
//
// State-enter handlers ([Machine.Enter]) run when the state changes, and
// when a machine starts; they may not change the state.
//
// # Events across versions and processes
//
// Event payloads and data must encode as msgpack: that is how they cross
// from one version to another, and later to plugin processes. An event's
// name for that crossing is [EventName]: its type's name, or what its
// EventName method returns. When a handler gets an event of another Go type
// with its event type's name (a type from another version's package), the
// payload is converted through msgpack, or by the handler that
// [UpgradeEvent] sets.
//
// # Versions and code change
//
// A [Code] is one version of a machine's code. A [*Machine] is the Code of
// a version compiled into the program; a plugin host provides Codes too.
// [ChangeCode] moves a running machine to another version: it suspends the
// machine between two events, encodes its data as msgpack, runs the new
// version's UPGRADE ([Machine.OnUpgrade]; with [AsDowngrade], the running
// version's [Machine.OnDowngrade]), converts the events it holds and those
// waiting in its mailbox, swaps the code and ends its own suspension (a
// machine that another caller holds suspended stays so). Timeouts and
// postponed events survive; events that arrive meanwhile wait in the
// mailbox and go to the new version, in order. If anything fails, the
// machine keeps its old version and data, its events as they were, and the
// error is an *[UpgradeError]. [ChangeSuspended] and [Revert] are the
// pieces a release handler uses to move many machines at one point, or
// none; a [Stager] makes one machine's change in two short suspensions,
// with UPGRADE run on a copy of its data in between.
//
// Package [github.com/hotline-go/hotline/fsm/fsmtest] checks that an
// UPGRADE and its downgrade round-trip, and runs machines in tests.
//
// # Determinism
//
// The runtime is a deterministic core, driven by a thin actor shell: the
// core gets one event at a time and decides what follows, with no clock and
// no goroutine of its own. Timeouts are actor timers, so tests run them in
// [testing/synctest] bubbles (make the [actor.System] inside the bubble).
package fsm
