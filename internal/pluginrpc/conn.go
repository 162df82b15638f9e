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
// The reader also watches the deadlines: every checkEvery, it looks at the
// oldest call in flight (all calls have the same timeout, so it is the
// first to expire). Past its call timeout, the plugin is hung. Waiting
// since nudgeAfter, it may be held up behind a slow handler: the reader
// nudges the plugin, once, and the plugin, which keeps no timer, hands its
// reading off. A caller's context ends the caller's wait through the
// context alone. No call needs a timer of its own.
//
// Any read or write error, a malformed frame, or a call unanswered past the
// call timeout kills the conn: every call in flight fails with a
// *diedError, and onDeath tells the process (proc.connDied), once; the
// process then fails its other conns with the same error.
type conn struct {
	nc      net.Conn
	rd      *wire.Reader // used only by the holder of the reader role
	w       *frameWriter
	slots   chan struct{}
	nudge   func() // tells the plugin a call waits long (see server.nudge); may be nil
	onDeath func(error)
	calls   sync.Pool

	// rdDeadline is the read deadline last set on the socket (a ctx's
	// interrupt may have moved it earlier since), nextCheck the time of the
	// reader's next check. Only the holder of the reader role uses them.
	rdDeadline time.Time
	nextCheck  time.Time

	mu      sync.Mutex
	pending map[uint64]*call
	oldest  *call // the pending calls in the order sent: the first to hang
	newest  *call
	waiters []*call // parked calls, which may be given the reader role
	nextID  uint64
	reading bool  // the reader role is held, or promised to a parked call
	err     error // why the conn died; nil while it lives
	closing bool  // Client.Close: a death is ErrClosed, not ErrPluginDied
}

// call is one request in flight.
type call struct {
	id         uint64
	sentAt     time.Time
	hangAt     time.Time     // unanswered then, the plugin is hung
	nudged     bool          // the plugin was nudged for this call
	abandoned  bool          // a stand-in for a call whose caller gave up (see abandon)
	prev, next *call         // conn's pending list, in the order sent
	wake       chan struct{} // a parked call is woken by one token, sent under conn.mu
	done       bool
	reader     bool // the reader role was passed to this parked call
	widx       int  // index in conn.waiters; -1 when not parked
	resp       wire.Response
	err        error
}

// aLongTimeAgo is a deadline in the past, to interrupt a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

// newConn makes the host's end of one event connection. slots caps the
// calls in flight; the connections of one process share it.
func newConn(nc net.Conn, rd *wire.Reader, slots chan struct{}, writeTimeout time.Duration, nudge func(), onDeath func(error)) *conn {
	c := &conn{
		nc:      nc,
		rd:      rd,
		w:       newFrameWriter(nc, writeTimeout),
		slots:   slots,
		nudge:   nudge,
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
// because this or an earlier call was not answered within timeout.
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

	cl := c.calls.Get().(*call)
	defer c.release(cl)
	now := time.Now()
	cl.sentAt, cl.hangAt = now, now.Add(timeout)
	deadline := cl.hangAt
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	req.Timeout = deadline.Sub(now) // the plugin's handler gets it

	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return wire.Response{}, err
	}
	c.nextID++
	req.ID, cl.id = c.nextID, c.nextID
	c.add(cl)
	c.mu.Unlock()

	if err := c.w.writeRequest(req); err != nil {
		if errors.Is(err, wire.ErrFrameTooLarge) {
			c.mu.Lock()
			c.remove(cl)
			c.mu.Unlock()
			return wire.Response{}, fmt.Errorf("%w: %w", ErrTooLarge, err)
		}
		if isTimeout(err) {
			err = fmt.Errorf("%w: writing a request", ErrTimeout)
		} else {
			err = fmt.Errorf("writing: %w", err)
		}
		c.die(err) // cl is failed with the others
	}
	return c.await(ctx, cl)
}

// await waits for cl's answer: as the reader, or parked until the answer,
// the reader role, or ctx's end.
func (c *conn) await(ctx context.Context, cl *call) (wire.Response, error) {
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
			c.read(ctx, cl) // returns with c.mu held
			if cl.done {
				continue
			}
			return c.abandon(ctx, cl)
		}

		cl.widx = len(c.waiters)
		c.waiters = append(c.waiters, cl)
		c.mu.Unlock()
		select {
		case <-cl.wake:
		case <-ctx.Done():
		}
		c.mu.Lock()
		c.unpark(cl)
		if !cl.done && !cl.reader && ctx.Err() != nil {
			return c.abandon(ctx, cl)
		}
	}
}

// abandon ends a call whose ctx ended before its answer. It is called with
// c.mu held and releases it.
//
// The plugin still owes the call an answer: a stand-in takes the call's
// place among the pending calls (cl goes back to the pool), so that the
// late answer is known for one and dropped, an answer to no call is known
// for a broken plugin (see read), and a plugin that never answers is found
// out as hung, as for any call, once the stand-in is past its timeout and
// a grace (abandonGrace): without it, a hung handler of an abandoned call
// would hold its goroutine and key in the plugin for good while the other
// calls are answered.
func (c *conn) abandon(ctx context.Context, cl *call) (wire.Response, error) {
	if c.pending[cl.id] == cl {
		t := &call{id: cl.id, sentAt: cl.sentAt, hangAt: cl.hangAt.Add(abandonGrace(cl.hangAt.Sub(cl.sentAt))),
			nudged: cl.nudged, abandoned: true, widx: -1}
		c.replace(cl, t)
	}
	c.mu.Unlock()
	return wire.Response{}, ctx.Err()
}

// abandonGrace is what an abandoned call is given beyond its timeout.
// Cancelled, it gets no word of it in the plugin: a handler that honours
// its context answers at its deadline, which the plugin counts from a
// little after the host sent the call, and must not be taken for hung.
func abandonGrace(timeout time.Duration) time.Duration { return max(timeout/2, 2*checkEvery) }

// read holds the reader role until cl's answer arrives, the conn dies (also
// because a call hung), or ctx ends. It returns with c.mu held and the role
// passed on.
func (c *conn) read(ctx context.Context, cl *call) {
	if ctx.Done() != nil {
		// A read cannot select on ctx: interrupt it. A late interrupt of a
		// later reader is harmless: that reader reads on.
		stop := context.AfterFunc(ctx, func() { _ = c.nc.SetReadDeadline(aLongTimeAgo) })
		defer stop()
	}
	if now := time.Now(); !now.Before(c.nextCheck) {
		c.nextCheck = now.Add(checkEvery)
	}
	for {
		if err := c.setReadDeadline(c.nextCheck); err != nil {
			c.die(fmt.Errorf("reading: %w", err)) // the socket is closed, as a read would find
			break
		}
		if ctx.Err() != nil {
			break // ended before the deadline was set, which may have undone the interrupt
		}
		msg, err := c.rd.Next()
		if err != nil {
			if !isTimeout(err) {
				if errors.Is(err, wire.ErrFrameTooLarge) { // the plugin's writer makes none
					err = fmt.Errorf("%w: %w", ErrMalformed, err)
				}
				c.die(fmt.Errorf("reading: %w", err))
				break
			}
			if ctx.Err() != nil {
				break
			}
			now := time.Now()
			if now.Before(c.nextCheck) {
				c.rdDeadline = time.Time{} // an interrupt for an earlier reader's ctx
				continue
			}
			c.nextCheck = now.Add(checkEvery)
			if !c.check(now) {
				break
			}
			continue
		}
		var resp wire.Response
		if err := resp.Decode(msg); err != nil {
			c.die(fmt.Errorf("%w: %w", ErrMalformed, err))
			break
		}
		resp.Body = bytes.Clone(resp.Body)
		c.mu.Lock()
		p := c.pending[resp.ID]
		if p == nil {
			// No call awaits it: the plugin made up an id, or answered
			// one call twice. The answers cannot be trusted.
			what := "answered already"
			if resp.ID == 0 || resp.ID > c.nextID {
				what = "never sent"
			}
			c.mu.Unlock()
			c.die(fmt.Errorf("%w: answer to call %d, which was %s", ErrMalformed, resp.ID, what))
			break
		}
		c.remove(p)
		if !p.abandoned { // else a late answer: dropped
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
	c.mu.Lock()
	c.passReader()
}

// check looks at the oldest call in flight, at the reader's periodic check:
// past its call timeout, the plugin is hung and the conn dies (check
// returns false). The oldest call not nudged yet, if it has waited since
// nudgeAfter, nudges the plugin: each call nudges once, and each check
// sends one nudge at most.
// Abandoned calls, whose grace puts them out of order, are looked at up to
// the oldest call still awaited.
func (c *conn) check(now time.Time) bool {
	c.mu.Lock()
	o := c.oldest
	for ; o != nil; o = o.next {
		if !now.Before(o.hangAt) {
			c.mu.Unlock()
			c.die(ErrTimeout)
			return false
		}
		if !o.abandoned {
			break
		}
	}
	// The oldest call not nudged yet: a call behind a handler nudged off
	// the reading may be held up by a second slow handler that the new
	// reading goroutine ran, which needs a nudge of its own.
	for o = c.oldest; o != nil && o.nudged; o = o.next {
	}
	nudge := o != nil && c.nudge != nil && !now.Before(o.sentAt.Add(nudgeAfter))
	if nudge {
		o.nudged = true
	}
	c.mu.Unlock()
	if nudge {
		c.nudge()
	}
	return true
}

// The reader looks up from the socket every checkEvery, while it reads:
// a hung plugin is found out up to checkEvery late, and a slow handler is
// nudged nudgeAfter to nudgeAfter+checkEvery after its call was sent. The
// period is fixed, not a deadline per call: an idle thread woken by a timer
// that was moved later, or by a short period, slows every call
// (doc/plugins.md); every 50ms costs nothing measurable.
const (
	checkEvery = 50 * time.Millisecond
	nudgeAfter = 10 * time.Millisecond
)

// setReadDeadline sets the socket's read deadline to t, unless it is set so
// already.
func (c *conn) setReadDeadline(t time.Time) error {
	if t.Equal(c.rdDeadline) {
		return nil
	}
	c.rdDeadline = t
	return c.nc.SetReadDeadline(t)
}

// add makes cl pending. c.mu is held.
func (c *conn) add(cl *call) {
	c.pending[cl.id] = cl
	cl.prev = c.newest
	if c.newest != nil {
		c.newest.next = cl
	} else {
		c.oldest = cl
	}
	c.newest = cl
}

// replace puts t in cl's place among the pending calls. c.mu is held.
func (c *conn) replace(cl, t *call) {
	c.pending[t.id] = t
	t.prev, t.next = cl.prev, cl.next
	if t.prev != nil {
		t.prev.next = t
	} else {
		c.oldest = t
	}
	if t.next != nil {
		t.next.prev = t
	} else {
		c.newest = t
	}
	cl.prev, cl.next = nil, nil
}

// remove takes cl out of the pending calls, if it is there. c.mu is held.
func (c *conn) remove(cl *call) {
	if c.pending[cl.id] != cl {
		return
	}
	delete(c.pending, cl.id)
	if cl.prev != nil {
		cl.prev.next = cl.next
	} else {
		c.oldest = cl.next
	}
	if cl.next != nil {
		cl.next.prev = cl.prev
	} else {
		c.newest = cl.prev
	}
	cl.prev, cl.next = nil, nil
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
// in flight. Only the first call of die or fail has an effect.
func (c *conn) die(cause error) { c.fail(&diedError{cause: cause}) }

// fail is die with the error the calls in flight get: a *diedError, or
// ErrClosed. A conn being closed fails them with ErrClosed whatever err.
func (c *conn) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	if c.closing {
		c.err = ErrClosed
	} else {
		c.err = err
	}
	for p := c.oldest; p != nil; {
		next := p.next
		p.err, p.done = c.err, true
		p.prev, p.next = nil, nil
		if p.widx >= 0 {
			c.unpark(p)
			p.wake <- struct{}{}
		}
		p = next
	}
	clear(c.pending)
	c.oldest, c.newest = nil, nil
	err = c.err
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

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
