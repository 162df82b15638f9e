// Package plugin runs versions of a machine's code ([fsm.Code]) in plugin
// processes. A plugin author declares machines as for an in-process one,
// as [*fsm.Machine] values, and writes a main of one line:
//
//	func main() { plugin.Serve(phoneV1, phoneV2) }
//
// The host loads the binary and uses each version it serves as it would an
// in-process one: with [fsm.Start], [fsm.ChangeCode] (upgrades and
// downgrades across in-process and plugin versions alike: data crosses as
// msgpack either way), supervisors and the release handler.
//
//	p, err := plugin.Load(ctx, "/opt/phone/phone-v2", sum, plugin.WithMachine("phone"))
//	...
//	defer p.Close()
//	v2, err := p.Code("v2")
//	ref, err := fsm.Start(ctx, sys, v2, fsm.WithID("555-0100"))
//
// # Where things live
//
// A machine's state and data stay on the host, as msgpack bytes in the
// data format of its version. Each event goes to the plugin with them: the
// plugin decodes the data into its D, decodes the payload by its
// [fsm.EventName] into the type its handler takes (the host's Go type of
// the event need not be the plugin's: fields of one name carry over),
// runs the handler, and sends back the new state, the new data and the
// actions. The plugin keeps nothing between calls, so a plugin that
// crashes or is killed loses nothing: the process is restarted and the
// event delivered again (see [WithRedeliveries]).
//
// # What crosses, and what a caller gets
//
// Every action crosses: replies, reply errors, postpone, next events,
// state, event and named timeouts with their delays and payloads, cancels,
// stop. Values cross as msgpack, so on the host:
//
//   - a reply is a generic msgpack value: a struct arrives as a
//     map[string]any, numbers as the smallest Go integer type that holds
//     them. Use [As] to decode it into a type of the caller's.
//   - the error of a [fsm.ReplyError] and the reason of a [fsm.Stop] are
//     a [*RemoteError] with the error's text ([actor.Normal] stays nil).
//   - the payload of a next event or a timeout is an [Event]: its name and
//     its msgpack, sent back as it came. After a change of code to an
//     in-process version, such events are decoded by name into that
//     version's types.
//
// # Feature flags
//
// A plugin-hosted machine reads feature flags as an in-process one does:
// its handlers are declared with [fsm.OnFlags], and the machine is started
// with [fsm.WithFlags]. The host evaluates the flags for the machine and
// sends the names of those that are on with each event; in the plugin, a
// flag not among them is off. See doc/flags.md.
//
// # Failures
//
// A panic in a plugin's handler ends that machine with a [*PanicError]
// (the value and the plugin's stack); the process goes on serving the
// others. A plugin that keeps dying ends the machines whose events cannot
// be delivered with a reason wrapping [ErrCrashLoop], for their
// supervisors to decide. An [fsm.Instance] has no context, so each event
// is bounded by the call timeout ([WithCallTimeout]), after which the
// plugin is taken for hung, killed and restarted.
//
// # Lifecycle
//
// [Load] starts one process per [Plugin]; a [Loader] shares one process
// per binary among the Plugins loaded through it, and stops it when the
// last of them is closed. The Codes of a Plugin use its process: close it
// once no machine runs them (after moving the machines to other code, or
// stopping them). A machine whose Plugin was closed stops at its next
// event with a reason wrapping [ErrClosed].
//
// The wire messages are internal/wire's MachineCall and MachineResult,
// described byte by byte in doc/plugins.md.
package plugin
