// Package exchange is the phone switch: it serves phone lines over TCP
// (package protocol), runs one phone machine (package phone) per
// registered number, and routes calls between them. The machines are
// started by an [upgrade.ReleaseHandler], which moves them to another
// version of their code while calls go on, under a simple-one-for-one
// supervisor of the switch's own.
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
// # Supervision and upgrades
//
// [New] starts a simple-one-for-one supervisor ("phones"); each number that
// registers gets a child, started by the release handler
// ([upgrade.ReleaseHandler.Start], ID = the number) and linked to the
// supervisor. Children are temporary: a machine that crashes is not
// restarted. Its line gets ERR internal and is closed, the phone it last
// signalled gets a hang-up in its name, and the number is free to register
// again. Upgrades, rollbacks and their strategies are the release
// handler's: the switch holds no version of its own, and a phone that
// registers while an upgrade runs starts on the version the handler says.
//
// # Handoff
//
// A binary restart hands every line to the new process through an
// [upgrade.Handoff] given with [WithHandoff] (made for the System given to
// [New]): each connection is adopted when it is
// accepted, and again under its number, with its machine managed, when it
// registers. The Handoff's Pause of any line stops every reader between
// two lines (a reader writes to other lines' queues when it routes), then
// flushes that line's writer and returns what its reader had read and not
// handled; Resume, after a failure, lets every reader go on. In the new
// process, [Switch.Restore] rebuilds the registry from what
// [upgrade.Handoff.Receive] returned, moving each restored machine under
// the supervisor and the release handler, and [Switch.Ready], once the
// process is ready, starts serving the restored lines (before it, the old
// process may yet resume them, so nothing reads, writes or hangs up any
// of them); in the old one,
// [Switch.HandedOver] ends the readers of the lines handed over without
// hanging up.
package exchange
