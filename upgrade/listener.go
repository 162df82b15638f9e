package upgrade

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// flipper is what a Restarter needs from tableflip's *Upgrader; tests replace
// it with a fake that runs in one process.
type flipper interface {
	Listen(network, addr string) (net.Listener, error)
	ListenPacket(network, addr string) (net.PacketConn, error)
	Ready() error
	Upgrade() error
	Stop()
	HasParent() bool
	WaitForParent(ctx context.Context) error
}

// listener is the net.Listener a Restarter hands out. It takes no
// connection before the process is ready: until then they wait in the queue
// for the old process (if any), which would otherwise share them with a
// process that may yet fail and take them down with it. Once paused it stops
// taking connections from the socket, which the new process shares, without
// closing it: a goroutine in Accept waits until Close and then gets
// net.ErrClosed, so an http.Server stays in Serve until its Shutdown (which
// then reports http.ErrServerClosed, as usual). Close may be called more than
// once.
type listener struct {
	net.Listener
	ready <-chan struct{} // closed by Restarter.Ready

	pauseOnce sync.Once
	paused    chan struct{}
	holdMu    sync.Mutex
	held      chan struct{} // while a handoff holds Accept back; closed at release
	accepting int           // goroutines in the socket's accept, under holdMu
	out       int           // connections returned whose caller has not called Accept again, under holdMu
	acceptEnd sync.Cond     // signalled when accepting or out falls, with holdMu
	closeOnce sync.Once
	closed    chan struct{}
	closeErr  error
}

func newListener(ln net.Listener, ready <-chan struct{}) *listener {
	l := &listener{Listener: ln, ready: ready, paused: make(chan struct{}), closed: make(chan struct{})}
	l.acceptEnd.L = &l.holdMu
	return l
}

// deadliner is implemented by *net.TCPListener and *net.UnixListener.
type deadliner interface{ SetDeadline(time.Time) error }

func (l *listener) Accept() (net.Conn, error) {
	l.holdMu.Lock()
	if l.out > 0 { // a caller back for more: the connection it had is set up
		l.out--
		l.acceptEnd.Broadcast()
	}
	l.holdMu.Unlock()
	select {
	case <-l.ready:
	case <-l.paused:
	case <-l.closed:
	}
	for {
		select {
		case <-l.paused:
			<-l.closed
			return nil, l.closedErr()
		default:
		}
		l.holdMu.Lock()
		held := l.held
		if held == nil {
			l.accepting++
		}
		l.holdMu.Unlock()
		if held != nil {
			select {
			case <-held:
			case <-l.paused:
			case <-l.closed:
			}
			continue
		}
		c, err := l.Listener.Accept()
		l.holdMu.Lock()
		l.accepting--
		if err == nil {
			l.out++
		}
		l.acceptEnd.Broadcast()
		l.holdMu.Unlock()
		if err == nil {
			return c, nil
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			l.holdMu.Lock()
			held := l.held
			l.holdMu.Unlock()
			if held != nil {
				continue // a hold's deadline: wait for its release
			}
		}
		select {
		case <-l.paused:
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue // our own deadline: wait for Close
			}
		default:
		}
		select {
		case <-l.closed:
			return nil, l.closedErr()
		default:
		}
		return nil, err
	}
}

func (l *listener) closedErr() error {
	addr := l.Listener.Addr()
	return &net.OpError{Op: "accept", Net: addr.Network(), Addr: addr, Err: net.ErrClosed}
}

// pause makes Accept stop taking connections. A goroutine blocked in the
// socket's accept is woken by a deadline in the past.
func (l *listener) pause() {
	l.pauseOnce.Do(func() {
		close(l.paused)
		l.wakeHold()
		if d, ok := l.Listener.(deadliner); ok {
			_ = d.SetDeadline(time.Unix(1, 0))
		}
	})
}

// hold makes Accept take no connection until release: they wait in the
// socket's queue. A state handoff holds the listeners from the moment it
// pauses the connections, so that none is accepted that it would not hand
// over. It returns once no goroutine is in the socket's accept (one that
// had checked the deadline just before it was set may still take a
// connection) and every connection Accept returned is set up: its caller
// has called Accept again, as an accept loop does once it has registered
// the connection (Adopt) and its machine (Manage). It waits for that up to
// grace after the hold, and returns how many connections were still out
// then: their registration, if it comes, is too late for this handoff.
// A listener paused or closed has no caller coming back, and none out.
func (l *listener) hold(grace time.Duration) (late int) {
	l.holdMu.Lock()
	defer l.holdMu.Unlock()
	if l.held != nil {
		return 0
	}
	l.held = make(chan struct{})
	if d, ok := l.Listener.(deadliner); ok {
		_ = d.SetDeadline(time.Unix(1, 0))
		for l.accepting > 0 {
			l.acceptEnd.Wait()
		}
	}
	expired := false
	t := time.AfterFunc(grace, func() {
		l.holdMu.Lock()
		expired = true
		l.holdMu.Unlock()
		l.acceptEnd.Broadcast()
	})
	defer t.Stop()
	for l.out > 0 && !expired && !l.ending() {
		l.acceptEnd.Wait()
	}
	if l.ending() {
		return 0
	}
	return l.out
}

// wakeHold wakes a hold waiting for callers to come back, once l is paused
// or closed.
func (l *listener) wakeHold() {
	l.holdMu.Lock()
	l.acceptEnd.Broadcast()
	l.holdMu.Unlock()
}

// ending reports whether l is paused or closed: no caller comes back.
func (l *listener) ending() bool {
	select {
	case <-l.paused:
		return true
	case <-l.closed:
		return true
	default:
		return false
	}
}

// release undoes hold.
func (l *listener) release() {
	l.holdMu.Lock()
	defer l.holdMu.Unlock()
	if l.held == nil {
		return
	}
	select {
	case <-l.paused: // the pause's deadline stays
	default:
		if d, ok := l.Listener.(deadliner); ok {
			_ = d.SetDeadline(time.Time{})
		}
	}
	close(l.held)
	l.held = nil
}

func (l *listener) Close() error {
	l.closeOnce.Do(func() {
		close(l.closed)
		l.wakeHold()
		l.closeErr = l.Listener.Close()
	})
	return l.closeErr
}
