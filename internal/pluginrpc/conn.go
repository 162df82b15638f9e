package pluginrpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/hotline-go/hotline/internal/wire"
)

// conn is the host's end of one plugin process's event socket. Any number
// of goroutines call roundTrip at once; their requests are pipelined on the
// socket, tagged with an ID, and answered in any order.
//
// There is no reader goroutine. One of the callers waiting for an answer
// holds the reader role: it reads frames and hands each answer to its
// caller, until its own arrives; then it passes the role to another
// waiting caller, if any. A lone caller thus writes its request and reads
// its answer itself, as a plain request/response over a socket would,
// without waking another goroutine. The plugin side reads requests without
// ever blocking on their handling, so a caller blocked in a write always
// gets through, and a waiting caller is always reading: the pipeline
// cannot deadlock. slots caps the calls in flight, which bounds what the
// plugin queues.
//
// Any read or write error, a malformed frame, or a call unanswered past the
// call timeout kills the conn: every call in flight fails with a
// *diedError, and onDeath tells the Client, once.
type conn struct {
	nc      net.Conn
	rd      *wire.Reader // used only by the holder of the reader role
	w       *frameWriter
	slots   chan struct{}
	onDeath func(error)
	calls   sync.Pool

	// rdDeadline is the read deadline last set on the socket, known to be
	// at least that (a ctx's interrupt may have moved it earlier). Only
	// the holder of the reader role uses it.
	rdDeadline time.Time

	mu      sync.Mutex
	pending map[uint64]*call
	waiters []*call // parked calls, which may be given the reader role
	nextID  uint64
	reading bool  // the reader role is held, or promised to a parked call
	err     error // why the conn died; nil while it lives
	closing bool  // Client.Close: a death is ErrClosed, not ErrPluginDied
}

// call is one request in flight.
type call struct {
	id     uint64
	wake   chan struct{} // a parked call is woken by one token, sent under conn.mu
	done   bool
	reader bool // the reader role was passed to this parked call
	widx   int  // index in conn.waiters; -1 when not parked
	resp   wire.Response
	err    error
}

// aLongTimeAgo is a deadline in the past, to interrupt a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

func newConn(nc net.Conn, rd *wire.Reader, maxInFlight int, writeTimeout time.Duration, onDeath func(error)) *conn {
	c := &conn{
		nc:      nc,
		rd:      rd,
		w:       newFrameWriter(nc, writeTimeout),
		slots:   make(chan struct{}, maxInFlight),
		onDeath: onDeath,
		pending: make(map[uint64]*call),
	}
	c.calls.New = func() any { return &call{wake: make(chan struct{}, 1), widx: -1} }
	return c
}

// roundTrip sends req (its ID and Timeout are set here) and waits for the
// answer. It returns ctx's error if ctx ends first (the late answer will be
// dropped), ErrTooLarge for a request too large, and the conn's death (a
// *diedError, or ErrClosed) if the conn dies first or has died, including
// because the answer did not come within timeout.
func (c *conn) roundTrip(ctx context.Context, req *wire.Request, timeout time.Duration) (wire.Response, error) {
	if err := ctx.Err(); err != nil {
		return wire.Response{}, err
	}
	select {
	case c.slots <- struct{}{}:
	default:
		select {
		case c.slots <- struct{}{}:
		case <-ctx.Done():
			return wire.Response{}, ctx.Err()
		}
	}
	defer func() { <-c.slots }()

	now := time.Now()
	deadline, byCtx := now.Add(timeout), false
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline, byCtx = d, true
	}
	req.Timeout = deadline.Sub(now)

	cl := c.calls.Get().(*call)
	defer c.release(cl)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return wire.Response{}, err
	}
	c.nextID++
	req.ID, cl.id = c.nextID, c.nextID
	c.pending[cl.id] = cl
	c.mu.Unlock()

	if err := c.w.writeRequest(req); err != nil {
		if errors.Is(err, wire.ErrFrameTooLarge) {
			c.mu.Lock()
			delete(c.pending, cl.id)
			c.mu.Unlock()
			return wire.Response{}, fmt.Errorf("%w: %w", ErrTooLarge, err)
		}
		if isTimeout(err) {
			err = fmt.Errorf("%w: writing a request", ErrTimeout)
		}
		c.die(err) // cl is failed with the others
	}
	return c.await(ctx, cl, deadline, byCtx)
}

// await waits for cl's answer: as the reader, or parked until the answer,
// the reader role, the deadline or ctx's end.
func (c *conn) await(ctx context.Context, cl *call, deadline time.Time, byCtx bool) (wire.Response, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	c.mu.Lock()
	for {
		if cl.done {
			resp, err := cl.resp, cl.err
			c.mu.Unlock()
			return resp, err
		}
		if !c.reading || cl.reader {
			c.reading, cl.reader = true, false
			c.mu.Unlock()
			c.read(ctx, cl, deadline, byCtx) // returns with c.mu held
			if cl.done {
				continue
			}
			return c.giveUp(ctx, cl, byCtx)
		}

		cl.widx = len(c.waiters)
		c.waiters = append(c.waiters, cl)
		c.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(time.Until(deadline))
		}
		expired := false
		select {
		case <-cl.wake:
		case <-timer.C:
			expired = true
		case <-ctx.Done():
			expired = true
		}
		c.mu.Lock()
		c.unpark(cl)
		if expired && !cl.done && !cl.reader {
			return c.giveUp(ctx, cl, byCtx)
		}
	}
}

// giveUp ends a call whose deadline passed or whose ctx ended before its
// answer. It is called with c.mu held and releases it. Past the call
// timeout, the plugin is taken for hung, and the conn dies.
func (c *conn) giveUp(ctx context.Context, cl *call, byCtx bool) (wire.Response, error) {
	delete(c.pending, cl.id)
	c.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return wire.Response{}, err
	}
	if byCtx {
		return wire.Response{}, context.DeadlineExceeded
	}
	c.die(ErrTimeout)
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	return wire.Response{}, err
}

// read holds the reader role until cl's answer arrives, the conn dies, or
// cl's deadline passes or ctx ends. It returns with c.mu held and the role
// passed on.
func (c *conn) read(ctx context.Context, cl *call, deadline time.Time, byCtx bool) {
	if ctx.Done() != nil {
		// A read cannot select on ctx: interrupt it. A late interrupt of a
		// later reader is harmless: that reader reads on.
		stop := context.AfterFunc(ctx, func() { _ = c.nc.SetReadDeadline(aLongTimeAgo) })
		defer stop()
	}
	if err := c.setReadDeadline(deadline, byCtx); err != nil {
		c.die(err)
		c.mu.Lock()
		c.passReader()
		return
	}
	for {
		msg, err := c.rd.Next()
		if err != nil {
			if isTimeout(err) && ctx.Err() == nil && time.Now().Before(deadline) {
				c.rdDeadline = time.Time{}
				if err := c.setReadDeadline(deadline, byCtx); err == nil {
					continue // interrupted for an earlier reader's ctx
				}
			}
			if !isTimeout(err) {
				c.die(fmt.Errorf("reading: %w", err))
			}
			c.mu.Lock()
			c.passReader()
			return
		}
		var resp wire.Response
		if err := resp.Decode(msg); err != nil {
			c.die(fmt.Errorf("%w: %w", ErrMalformed, err))
			c.mu.Lock()
			c.passReader()
			return
		}
		resp.Body = bytes.Clone(resp.Body)
		c.mu.Lock()
		if p := c.pending[resp.ID]; p != nil { // else a late answer: dropped
			delete(c.pending, resp.ID)
			p.resp, p.done = resp, true
			if p == cl {
				c.passReader()
				return
			}
			if p.widx >= 0 {
				c.unpark(p)
				p.wake <- struct{}{}
			}
		}
		c.mu.Unlock()
	}
}

// deadlineGrain is how late a hung plugin may be found out: the call
// timeout's deadline on the socket is rounded up to it, so that calls in a
// row do not each move the socket's timer.
const deadlineGrain = 50 * time.Millisecond

// setReadDeadline sets the socket's read deadline for a reader whose call
// ends at deadline: exactly if a caller's context set it, else rounded up
// to deadlineGrain, and not at all if the socket has that deadline already.
func (c *conn) setReadDeadline(deadline time.Time, byCtx bool) error {
	if !byCtx {
		if r := deadline.Round(deadlineGrain); r.Before(deadline) {
			deadline = r.Add(deadlineGrain)
		} else {
			deadline = r
		}
		if deadline.Equal(c.rdDeadline) {
			return nil
		}
	}
	c.rdDeadline = deadline
	return c.nc.SetReadDeadline(deadline)
}

// passReader gives up the reader role, to a parked call if there is one.
// It is called with c.mu held.
func (c *conn) passReader() {
	c.reading = false
	if n := len(c.waiters); n > 0 && c.err == nil {
		w := c.waiters[n-1]
		c.unpark(w)
		w.reader, c.reading = true, true
		w.wake <- struct{}{}
	}
}

// unpark removes cl from the waiters, if it is there. c.mu is held.
func (c *conn) unpark(cl *call) {
	i := cl.widx
	if i < 0 {
		return
	}
	last := len(c.waiters) - 1
	c.waiters[i] = c.waiters[last]
	c.waiters[i].widx = i
	c.waiters[last] = nil
	c.waiters = c.waiters[:last]
	cl.widx = -1
}

// release returns a finished call to the pool. No one sends to cl.wake any
// more: it is neither pending nor parked.
func (c *conn) release(cl *call) {
	select {
	case <-cl.wake:
	default:
	}
	*cl = call{wake: cl.wake, widx: -1}
	c.calls.Put(cl)
}

// die kills the conn for cause: it closes the socket and fails every call
// in flight. Only the first call has an effect.
func (c *conn) die(cause error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	if c.closing {
		c.err = ErrClosed
	} else {
		c.err = &diedError{cause: cause}
	}
	for _, p := range c.pending {
		p.err, p.done = c.err, true
		if p.widx >= 0 {
			c.unpark(p)
			p.wake <- struct{}{}
		}
	}
	clear(c.pending)
	err := c.err
	c.mu.Unlock()
	_ = c.nc.Close()
	c.onDeath(err)
}

// close kills the conn with ErrClosed.
func (c *conn) close() {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	c.die(ErrClosed)
}

// dead returns why the conn died, or nil.
func (c *conn) dead() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
