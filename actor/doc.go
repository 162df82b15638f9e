// Package actor is Hotline's process model, after Erlang/OTP: actors that
// own their state and talk only by messages, links and monitors that make
// failure visible, and system messages that suspend an actor and replace its
// code while it runs.
//
// # Actors and messages
//
// A [System] owns a set of actors. [System.Spawn] starts one running a
// [Behavior] and returns its [Ref], a small comparable value. [Send] puts a
// message in the actor's mailbox and returns at once; [Call] waits for the
// handler's [Context.Reply], or for its context to end. An actor handles one
// message at a time, and messages from one sender arrive in the order they
// were sent. A mailbox is unbounded unless [WithMailbox] gives it a bound and
// an [Overflow] policy; Send never blocks.
//
// An idle actor costs memory, not a goroutine: an actor is put on a
// goroutine (one of a small pool the System keeps) only while its mailbox
// has work, and it yields after a batch so that one busy actor cannot starve
// the others. Links, monitors, timers and a name cost nothing until used.
//
// # Failure
//
// An actor exits when its handler calls [Context.Stop], when it panics (the
// reason is a *[PanicError] with the value and stack; the process goes on),
// when it is stopped with [Stop] or killed with [Kill], or when a linked
// actor exits abnormally. Exit reasons are errors: [Normal], [Shutdown],
// [Killed], [ErrNoProc], or any other, matched with [errors.Is].
//
// Links ([LinkTo], [Context.Link]) are bidirectional: when one side exits
// with a reason other than Normal, the other exits with the same reason,
// unless it traps exits ([Context.TrapExits]), in which case it receives an
// [Exit] message, in the place among its messages where the signal arrived,
// so that a sender's messages and its exit signals keep their order. A
// kill cannot be trapped. [Context.Unlink] ends a link at once: a signal of
// that link still on its way is dropped. Monitors ([Context.Monitor]) are
// one-way and deliver a [Down] message once, at once with ErrNoProc if the
// actor was already dead. Exit and Down messages stand for signals: a
// mailbox bound never refuses or drops them. doc/actor.md lists the OTP
// rules this package was checked against, and its differences.
//
// # System messages
//
// [Suspend], [Resume], [ChangeCode], [Inspect], [Stop], [Kill] and
// [SendExit] overtake user messages: they are handled before the actor's
// next user message, and also while it is suspended. A suspended actor's
// user messages keep queuing and none is lost; after [Resume] it handles
// them in order. Suspensions are counted: each Suspend is ended by one
// Resume, so that callers that do not know of each other (a release
// handler, a binary restart, an operator) never end one another's
// suspension. ChangeCode replaces a suspended actor's Behavior through a
// function, on the actor's own goroutine: the primitive on which the fsm and
// upgrade packages build live code change.
//
// # Shutdown
//
// [System.Shutdown] stops the roots (actors not spawned with [LinkTo] a
// live parent) in the reverse order of spawning, waiting for each one's
// [Terminator] hook, and leaves every other actor to its parent, so that a
// supervision tree goes down from its root in its own order; then it stops
// the System's goroutines. Nothing in this package is global: two Systems
// share nothing.
//
// Go cannot preempt a running handler, so a kill, a stop or a suspension
// takes effect when the current handler returns. Handlers should not block
// for long; use [Context.From] to answer a call later instead.
package actor
