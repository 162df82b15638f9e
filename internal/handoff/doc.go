// Package handoff is the format in which a process hands its live machines
// and their connections to the process that replaces it (see
// doc/binary-upgrade.md, "State handoff", for the protocol byte by byte).
//
// # Format
//
// A handoff is a short exchange on a Unix stream socket: a [Header] from the
// old process (magic and format [Version]), a one-byte answer from the new
// one (accept, or refuse with a reason, for a format it cannot read), then
// the [State] as one frame (length, file count, msgpack body) followed by
// the connections' file descriptors in SCM_RIGHTS messages, and last the new
// process's acknowledgement. Every msgpack structure is encoded as an array,
// field by field in declaration order, so that the bytes of a [State] are
// fixed by [Version]; golden files in testdata hold them.
//
// A decoder never trusts its input: [Decode] and the frame readers bound
// every length and return an error wrapping [ErrFormat], never panic.
package handoff
