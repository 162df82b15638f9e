// Package protocol parses and formats the phone switch's line protocol: one
// TCP connection is one phone line, every message is one line of text
// ending in "\n" (a "\r" before it is tolerated, for telnet and nc -C).
//
// # Commands and replies
//
// A [Command] is what a phone sends ([Register], [OffHook], [Key],
// [Audio], [OnHook], [Status]); [ParseCommand] reads one, and returns
// [ErrUnknownCommand] or [ErrBadArgs] for a line that is not one, which the
// switch answers with "ERR unknown-command" or "ERR bad-args". A [Reply]
// is what the switch sends ([Registered], [DialTone], [Ringback], [Ring],
// [Connected], [Busy], [Audio], [OnHook], [Hangup], [StatusLine],
// [Error]); [ParseReply] reads one, for clients such as the load generator.
// Both are [fmt.Stringer]s whose String is the line without its "\n".
//
// # Bounded lines
//
// A line holds at most [MaxLine] bytes, its "\n" included. [Reader] reads
// lines within that bound: a longer line is discarded up to its "\n" and
// reported as [ErrLineTooLong], and the switch answers "ERR line-too-long"
// and goes on reading: the connection stays usable, and a peer can never
// make the switch buffer more than MaxLine bytes of a line.
package protocol
