// Package flags holds feature flags: named runtime toggles that a
// machine's handlers read, changed while the program runs (by the admin
// API or a flag file) without a new version of any code. It is Facebook's
// gatekeeper technique, inside one process.
//
// # Values
//
// A flag is [Off] (the default: a flag never set reads off), [On], or a
// [Percent] of the machines. Which machines is decided by a stable hash of
// the flag's name and the machine's ID ([Bucket]): a machine's answer
// changes only when the percentage crosses its bucket, raising the
// percentage only adds machines, and two flags pick independent machines.
//
// # Reading and changing
//
// A [Set] is safe for concurrent use. [Set.Enabled] is the read, made for
// the path of every event: one atomic load and a map lookup, no lock and
// no allocation. [Set.Set], [Set.Delete] and [Set.LoadFile] change flags;
// each change records who made it, when, and the old and new value
// ([Status]), and logs it with log/slog.
//
// # The flag file
//
// One flag a line, a name and a value, # for comments:
//
//	# name      value
//	fast-dial   25%
//	new-tone    on
//
// A bad line is an error naming the file and the line, and a bad file
// changes nothing. Flags not in the file keep their values. The file is
// read by [Set.LoadFile] and read again on demand by [Set.Reload].
//
// # Machines
//
// A *Set is an fsm.FlagSource: give it to a machine with fsm.WithFlags (or
// to a release handler with upgrade.WithFlags) and declare the handlers
// that read flags with fsm.OnFlags. See doc/flags.md.
package flags
