// Package phone is the phone of the phone switch: one state machine per
// phone line, in two versions of code, [V1] and [V2], with the five states
// of DESIGN.md's table ([Off], [Dialing], [Connecting], [InProgress],
// [Disconnecting]).
//
// # Pure handlers, effects as outputs
//
// Handlers do no I/O and read no clock. Every event is sent with
// [fsm.Call], and every handler replies with an [Output]: the lines to
// write on this phone's connection, in order, and the [Signal]s to deliver
// to one other phone (ring, ringing, busy, answered, audio, hangup). The
// switch writes the lines to the connection's writer and turns each signal
// into that phone's event ([Signal.Event]); machines never talk to each
// other directly, so no machine ever waits on another. Time comes in with
// the events that need it ([OffHook.At]), stamped by the switch.
//
// # Versions
//
// [V1] holds a call in flat fields ([DataV1]); [V2] restructures it into a
// nested [Call] ([DataV2]) and shows since= in STATUS: when the call was
// connected, which v1 records but does not show. V2's UPGRADE reads v1's
// data and its downgrade writes it back, exactly. Both versions take the
// same event types, so events queued during an upgrade need no conversion.
//
// # Feature flags
//
// Both versions read one feature flag, [FlagHDAudio]: STATUS ends with
// codec=hd for a phone for which it is on. A machine reads it when started
// with [fsm.WithFlags] (the release handler's flags), a plugin-hosted one
// from the names the host sends with each event.
//
// The machines are plain [*fsm.Machine] values: the switch runs them in
// process, and a plugin main can serve the same values.
package phone
