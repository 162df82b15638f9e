package upgrade

import (
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// heldConn is a connection handed over by the previous process, as
// [Handoff.Receive] returns it: its Read waits until this process is ready
// ([Restarter.Ready]). Until then the previous process may yet resume the
// connection (this one fails, or is killed at the upgrade timeout) from
// the state it handed over; a byte read here meanwhile would be lost to
// it, and a request answered twice. Write, and everything else, goes
// through at once. A Read that waits honours the read deadline and ends
// when the connection is closed, as a Read of the socket would.
type heldConn struct {
	net.Conn // the connection itself: a *net.TCPConn or *net.UnixConn

	ready <-chan struct{} // closed by Restarter.Ready

	closeOnce sync.Once
	closed    chan struct{}

	mu       sync.Mutex
	deadline time.Time     // the read deadline
	moved    chan struct{} // closed when the read deadline changes
}

func newHeldConn(c net.Conn, ready <-chan struct{}) *heldConn {
	return &heldConn{Conn: c, ready: ready, closed: make(chan struct{}), moved: make(chan struct{})}
}

// NetConn returns the connection itself (a *net.TCPConn or a
// *net.UnixConn), whose Read does not wait for Ready.
func (c *heldConn) NetConn() net.Conn { return c.Conn }

// SyscallConn is the connection's own, so that the connection can be
// adopted ([Handoff.Adopt]) and handed on.
func (c *heldConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, syscall.EINVAL
	}
	return sc.SyscallConn()
}

// halfCloser is implemented by *net.TCPConn and *net.UnixConn.
type halfCloser interface {
	CloseRead() error
	CloseWrite() error
}

// CloseWrite shuts down the writing side of the connection, as
// *net.TCPConn's does.
func (c *heldConn) CloseWrite() error {
	hc, ok := c.Conn.(halfCloser)
	if !ok {
		return c.opError("close", syscall.EINVAL)
	}
	return hc.CloseWrite()
}

// CloseRead shuts down the reading side of the connection, as
// *net.TCPConn's does.
func (c *heldConn) CloseRead() error {
	hc, ok := c.Conn.(halfCloser)
	if !ok {
		return c.opError("close", syscall.EINVAL)
	}
	return hc.CloseRead()
}

func (c *heldConn) Read(b []byte) (int, error) {
	for {
		select {
		case <-c.ready:
			return c.Conn.Read(b)
		default:
		}
		c.mu.Lock()
		d, moved := c.deadline, c.moved
		c.mu.Unlock()
		var (
			t      *time.Timer
			expire <-chan time.Time
		)
		if !d.IsZero() {
			left := time.Until(d)
			if left <= 0 {
				return 0, c.opError("read", os.ErrDeadlineExceeded)
			}
			t = time.NewTimer(left)
			expire = t.C
		}
		select {
		case <-c.ready:
		case <-moved:
		case <-expire: // checked again above
		case <-c.closed:
			return 0, c.opError("read", net.ErrClosed)
		}
		if t != nil {
			t.Stop()
		}
	}
}

func (c *heldConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

func (c *heldConn) SetReadDeadline(t time.Time) error {
	c.setDeadline(t)
	return c.Conn.SetReadDeadline(t)
}

func (c *heldConn) SetDeadline(t time.Time) error {
	c.setDeadline(t)
	return c.Conn.SetDeadline(t)
}

func (c *heldConn) setDeadline(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	close(c.moved)
	c.moved = make(chan struct{})
}

func (c *heldConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
