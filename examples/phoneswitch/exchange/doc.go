// Package exchange is the phone switch: it serves phone lines over TCP
// (package protocol), runs one phone machine (package phone) per
// registered number, routes calls between them, and moves every live phone
// to another version of the machine's code while calls go on.
//
// # Goroutines and ownership
//
// Each connection has two goroutines, both owned by the [Switch] and
// waited for by [Switch.Close]: a reader, which parses a line, sends the
// event to its phone's machine with [fsm.Call], writes the reply's lines to
// its own writer and delivers the reply's signals to other machines (and
// their lines to their writers); and a writer, the only goroutine that
// writes to the connection. Machines never call each other, so routing
// cannot deadlock. The frames of one phone are routed by its reader, one
// after the other, so they reach the peer in order.
//
// # Backpressure
//
// A connection's writer has a bounded queue (see [WithWriteQueue]). When it
// is full, the goroutine delivering to it waits: a slow reader slows down
// the phone talking to it, and nothing is dropped. If the queue stays full
// for longer than the stall timeout (see [WithStallTimeout]), or one write
// takes that long, the slow connection is closed (it hangs up, as a closed
// connection does): memory per connection is bounded by the queue and the
// line length, whatever a client does.
//
// # Upgrades
//
// [Switch.Upgrade] moves every live phone to another version at one point:
// it suspends every machine, changes the code of each
// ([fsm.ChangeSuspended]), reverts them all if one fails ([fsm.Revert]),
// and resumes them. Events sent meanwhile wait in the mailboxes: none is
// lost, duplicated or reordered. New phones start on the version in use.
//
// # Handoff
//
// A binary restart hands every line to the new process through an
// [upgrade.Handoff] given with [WithHandoff] (and the System it restores
// machines in, [WithSystem]): each connection is adopted when it is
// accepted, and again under its number, with its machine managed, when it
// registers. The Handoff's Pause of any line stops every reader between
// two lines (a reader writes to other lines' queues when it routes), then
// flushes that line's writer and returns what its reader had read and not
// handled; Resume, after a failure, lets every reader go on. In the new
// process, [Switch.Restore] rebuilds the registry from what
// [upgrade.Handoff.Receive] returned; in the old one, [Switch.HandedOver]
// ends the readers of the lines handed over without hanging up.
//
// In one process, [Switch.Detach] takes every line out of service between
// two lines of each connection, with its connection open, the bytes read
// and not yet handled, and its machine suspended and snapshotted;
// [Switch.Adopt] serves them in another switch; [Switch.Release] and
// [Switch.Reattach] end the old switch's part after a success or a
// failure.
package exchange
