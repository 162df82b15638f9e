// Package wire defines the messages that cross between a Hotline host and a
// plugin process, and their encoding: msgpack, written and read by hand so
// that a message costs no reflection and, on the read side, no copy of its
// body.
//
// Nothing outside Hotline may import this package. The byte-level
// description lives in doc/plugins.md; golden-byte tests in this package fix
// it, so that a change of format is noticed. A change of format is a change
// of [ProtocolVersion].
//
// # Messages
//
// Every message is a msgpack array whose first element is its [Type]:
//
//	Hello    [1, protocol, socketDir, conns]                  host → plugin, control RPC
//	Welcome  [2, protocol, machine, [versions...], socket, token] plugin → host, its answer
//	Auth     [3, token, conn]                                 host → plugin, first frame on each connection
//	Request  [4, id, key, method, timeoutNanos, body]         host → plugin
//	Response [5, id, status, body, message, stack]            plugin → host
//
// Integers are unsigned and written in their shortest msgpack form; strings
// are msgpack str, byte fields msgpack bin. Decoders accept any msgpack form
// of an unsigned integer and nil for an empty bin or str, and refuse
// anything else with an error that wraps [ErrMalformed].
//
// # Frames
//
// On the event socket each message is one frame: a 4-byte big-endian length,
// then that many bytes of msgpack. [AppendFrame] writes one, [Reader] reads
// them. A frame longer than [MaxFrameSize] is refused.
package wire
