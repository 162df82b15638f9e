package exchange

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotline-go/hotline/examples/phoneswitch/phone"
	"github.com/hotline-go/hotline/examples/phoneswitch/protocol"
)

// conn is one phone line: a reader goroutine (run) and a writer goroutine
// (write), the only one that writes to nc.
type conn struct {
	s        *Switch
	nc       net.Conn
	out      chan string
	done     chan struct{} // closed by close: stop now
	stopping chan struct{} // closed by run: write what is queued, then stop

	closeOnce sync.Once
	ctx       context.Context // ends with the connection
	cancel    context.CancelFunc

	// A line handed over by a binary restart (Switch.Restore), or paused
	// for one and resumed.
	adopted  bool          // made by Restore, or paused once
	number   string        // registered before this conn was made (adopted)
	unread   []byte        // read by a previous owner, not yet handled
	finished chan struct{} // closed when run returns
	// gate is closed when this process owns the line (Switch.Ready): nil
	// for a line accepted here, the switch's readyC for one restored.
	// Until then the reader reads nothing and the writer writes nothing;
	// poke wakes the waiting reader for a pause.
	gate   <-chan struct{}
	poke   chan struct{}
	orphan bool // restored without its machine: fails (ERR internal) once read

	// A binary restart's state handoff (see binary.go): key is the
	// connection's key in the upgrade.Handoff, p the pause in progress.
	pmu   sync.Mutex
	key   string
	p     *pause
	syncC chan chan struct{} // the writer writes what is queued, then closes the channel
}

func newConn(s *Switch, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	return &conn{
		s: s, nc: nc, out: make(chan string, s.cfg.writeQueue),
		done: make(chan struct{}), stopping: make(chan struct{}), ctx: ctx, cancel: cancel,
		finished: make(chan struct{}),
		poke:     make(chan struct{}, 1),
		syncC:    make(chan chan struct{}),
	}
}

// close ends the connection: the writer stops, the reader's read fails.
// It reports whether this call closed it (false: it was closed already).
func (c *conn) close(reason string) (closed bool) { return c.closeCounted(reason, nil) }

// closeCounted is close, counting the close in n (if not nil) before
// anything can see the connection closed: a metric read after one of the
// close's consequences (the peer's HANGUP) includes it.
func (c *conn) closeCounted(reason string, n *atomic.Uint64) (closed bool) {
	c.closeOnce.Do(func() {
		closed = true
		if n != nil {
			n.Add(1)
		}
		c.s.log.Debug("exchange: connection closed", "remote", c.nc.RemoteAddr(), "reason", reason)
		close(c.done)
		c.cancel()
		if err := c.nc.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			c.s.log.Debug("exchange: close", "err", err)
		}
	})
	return closed
}

// enqueue queues lines for the writer, in order. It waits while the queue
// is full, and closes the connection if it stays full for the stall
// timeout. Lines for a closed connection are dropped: nobody is there.
func (c *conn) enqueue(lines ...string) {
	for _, l := range lines {
		select {
		case c.out <- l:
			continue
		case <-c.done:
			return
		default:
		}
		t := time.NewTimer(c.s.cfg.stallTimeout)
		select {
		case c.out <- l:
			t.Stop()
		case <-c.done:
			t.Stop()
			return
		case <-t.C:
			c.dropSlow("write queue full for " + c.s.cfg.stallTimeout.String())
			return
		}
	}
}

// dropSlow closes the connection of a client that does not read what the
// switch writes, counted and logged with the reason.
func (c *conn) dropSlow(reason string) {
	if c.closeCounted("slow consumer: "+reason, &c.s.counters.slow) {
		c.s.log.Warn("exchange: dropped a line that does not read", "remote", c.nc.RemoteAddr(), "reason", reason)
	}
}

// writeFailed closes the connection after a failed write: a write blocked
// for the stall timeout is a slow consumer.
func (c *conn) writeFailed(err error) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.dropSlow("a write blocked for " + c.s.cfg.stallTimeout.String())
		return
	}
	c.close("write: " + err.Error())
}

func (c *conn) write() {
	bw := bufio.NewWriterSize(c.nc, protocol.MaxLine)
	for gated := c.gate != nil; gated; {
		select {
		case <-c.gate:
			gated = false
		case <-c.done:
			return
		case <-c.stopping:
			select {
			case <-c.gate: // owned: write what the reader queued last
				gated = false
			default:
				return // the reader ended before this process owned the line
			}
		case ack := <-c.syncC:
			// A handoff flushes the line: only a process that is ready
			// hands its lines on, so this one owns it.
			if !c.writeQueued(bw) {
				return
			}
			close(ack)
		}
	}
	for {
		var l string
		select {
		case l = <-c.out:
		case ack := <-c.syncC:
			if !c.writeQueued(bw) {
				return
			}
			close(ack)
			continue
		case <-c.done:
			return
		case <-c.stopping:
			// The reader is done: write what is queued, then stop.
			select {
			case l = <-c.out:
			default:
				return
			}
		}
		for {
			if err := c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.stallTimeout)); err != nil {
				c.writeFailed(err)
				return
			}
			if _, err := bw.WriteString(l + "\n"); err != nil {
				c.writeFailed(err)
				return
			}
			if len(c.out) == 0 {
				break
			}
			l = <-c.out
		}
		if err := bw.Flush(); err != nil {
			c.writeFailed(err)
			return
		}
	}
}

// writeQueued writes and flushes every line queued; false if the
// connection failed (it is closed).
func (c *conn) writeQueued(bw *bufio.Writer) bool {
	for {
		select {
		case l := <-c.out:
			if err := c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.stallTimeout)); err != nil {
				c.writeFailed(err)
				return false
			}
			if _, err := bw.WriteString(l + "\n"); err != nil {
				c.writeFailed(err)
				return false
			}
			continue
		default:
		}
		if err := bw.Flush(); err != nil {
			c.writeFailed(err)
			return false
		}
		return true
	}
}

// waitReady waits until this process owns the line (see conn.gate). It
// returns false if a pause, or the connection's end, came first.
func (c *conn) waitReady() bool {
	if c.gate == nil {
		return true
	}
	for {
		select {
		case <-c.gate:
			return true
		case <-c.done:
			return false
		case <-c.poke:
			if c.stopRequested() {
				return false
			}
		}
	}
}

// run reads and handles lines until the connection ends, then hangs up and
// unregisters the phone.
func (c *conn) run() {
	defer close(c.finished)
	defer c.s.connDone(c)
	var wg sync.WaitGroup
	wg.Go(c.write)
	var number string
	var unread []byte
	for {
		var stopped bool
		number, unread, stopped = c.read()
		if !stopped {
			break
		}
		c.number, c.unread, c.adopted = number, unread, true
		p := c.currentPause()
		if p == nil {
			continue // resumed (a failed handoff) before it parked: read on
		}
		// Paused for a binary restart: wait to be resumed, or to be
		// handed over (the connection is the new process's).
		p.unread = unread
		close(p.parked)
		select {
		case <-p.resume:
			continue
		case <-p.gone:
			c.s.forget(c, number)
		case <-c.done:
		}
		c.s.releaseConn(c)
		close(c.stopping)
		wg.Wait()
		c.cancel()
		return
	}
	if number != "" {
		ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.callTimeout)
		c.s.hangUp(ctx, number)
		c.s.unregister(ctx, c, number)
		cancel()
	}
	close(c.stopping)
	wg.Wait()
	c.s.releaseConn(c)
	c.close("done")
}

// read handles lines until the connection ends, or is paused for a
// binary restart (stopped); it returns the number registered on it, if any, and the bytes
// read and not handled.
func (c *conn) read() (number string, unread []byte, stopped bool) {
	r := protocol.NewReaderAfter(c.unread, c.nc)
	number = c.number
	if !c.waitReady() {
		if c.stopRequested() {
			return number, r.Unread(), true
		}
		// Closed before this process owned the line (it failed before
		// Ready): the previous process resumes the call, so nothing
		// here hangs up.
		return "", nil, false
	}
	if c.orphan {
		c.enqueue(protocol.Error{Code: protocol.CodeInternal}.String())
		return "", nil, false
	}
	if c.adopted { // a pause left a read deadline
		if err := c.nc.SetReadDeadline(time.Time{}); err != nil {
			c.s.log.Debug("exchange: read", "err", err)
			return number, nil, false
		}
	}
	for {
		if c.stopRequested() {
			return number, r.Unread(), true
		}
		text, err := r.ReadLine()
		switch {
		case err != nil && (c.stopRequested() || errors.Is(err, os.ErrDeadlineExceeded)):
			// Paused; or woken by a pause already withdrawn (only a
			// pause sets a read deadline), and run reads on.
			return number, r.Unread(), true
		case errors.Is(err, protocol.ErrLineTooLong):
			c.s.counters.tooLong.Add(1)
			c.enqueue(protocol.Error{Code: protocol.CodeLineTooLong}.String())
			continue
		case err != nil:
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.s.log.Debug("exchange: read", "err", err)
			}
			return number, nil, false
		}
		cmd, err := protocol.ParseCommand(text)
		if err != nil {
			code := protocol.CodeUnknownCommand
			if errors.Is(err, protocol.ErrBadArgs) {
				code = protocol.CodeBadArgs
			}
			c.enqueue(protocol.Error{Code: code}.String())
			continue
		}
		if reg, ok := cmd.(protocol.Register); ok {
			number = c.register(number, reg.Number)
			continue
		}
		if number == "" {
			c.enqueue(protocol.Error{Code: protocol.CodeNotRegistered}.String())
			continue
		}
		if err := c.s.deliver(c.ctx, number, c.event(cmd)); err != nil {
			c.s.log.Error("exchange: phone failed", "number", number, "err", err)
			c.enqueue(protocol.Error{Code: protocol.CodeInternal}.String())
			return number, nil, false
		}
	}
}

func (c *conn) register(have, want string) string {
	switch {
	case have != "":
		c.enqueue(protocol.Error{Code: protocol.CodeAlreadyRegistered}.String())
		return have
	case !protocol.ValidNumber(want):
		c.enqueue(protocol.Error{Code: protocol.CodeBadNumber}.String())
		return ""
	}
	if _, err := c.s.register(c.ctx, c, want); err != nil {
		if errors.Is(err, ErrNumberTaken) {
			c.enqueue(protocol.Error{Code: protocol.CodeNumberTaken}.String())
		} else {
			c.s.log.Error("exchange: register", "number", want, "err", err)
			c.enqueue(protocol.Error{Code: protocol.CodeInternal}.String())
		}
		return ""
	}
	c.s.handRegistered(c, want)
	c.enqueue(protocol.Registered{Number: want}.String())
	return want
}

// event is the phone machine's event for a command of the phone's line.
func (c *conn) event(cmd protocol.Command) any {
	switch cmd := cmd.(type) {
	case protocol.OffHook:
		return phone.OffHook{At: c.s.cfg.now().UnixMilli()}
	case protocol.OnHook:
		return phone.OnHook{}
	case protocol.Key:
		return phone.Key{Key: cmd.Key}
	case protocol.Audio:
		return phone.SendAudio{Seq: cmd.Seq, Payload: cmd.Payload}
	case protocol.Status:
		return phone.Status{}
	}
	panic("exchange: unhandled command " + cmd.String()) // a command added to protocol and not here
}
