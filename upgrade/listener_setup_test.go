package upgrade

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/fsm"
)

// chanListener is a net.Listener whose connections come from a channel,
// with the deadline a hold sets: synctest can run it.
type chanListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
	mu     sync.Mutex
	dead   bool          // the deadline is in the past
	wake   chan struct{} // closed when the deadline changes
}

func newChanListener() *chanListener {
	return &chanListener{conns: make(chan net.Conn), closed: make(chan struct{}), wake: make(chan struct{})}
}

func (l *chanListener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		dead, wake := l.dead, l.wake
		l.mu.Unlock()
		if dead {
			return nil, os.ErrDeadlineExceeded
		}
		select {
		case c := <-l.conns:
			return c, nil
		case <-wake:
		case <-l.closed:
			return nil, net.ErrClosed
		}
	}
}

func (l *chanListener) SetDeadline(t time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dead = !t.IsZero() && !t.After(time.Now())
	close(l.wake)
	l.wake = make(chan struct{})
	return nil
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return &net.UnixAddr{Name: "chan", Net: "unix"} }

// acceptLoop accepts on l and, for each connection, waits for setUp to
// let it go before it calls Accept again, as a loop that registers the
// connection first does. It returns the channel the connections come out
// on, closed when Accept fails.
func acceptLoop(l net.Listener, setUp <-chan struct{}) <-chan net.Conn {
	got := make(chan net.Conn, 1)
	go func() {
		defer close(got)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			got <- c
			<-setUp
		}
	}()
	return got
}

// A hold waits for the connections Accept just returned to be set up (for
// their accept loop to come back), up to its grace; a listener closed meanwhile
// ends the wait at once.
func TestListenerHoldWaitsForSetUp(t *testing.T) {
	for _, tc := range []struct {
		name     string
		then     func(l *listener, setUp chan<- struct{}) // while the hold waits
		wantLate int
		wantTook time.Duration
	}{
		{"set up", func(_ *listener, setUp chan<- struct{}) { setUp <- struct{}{} }, 0, 0},
		{"never", func(*listener, chan<- struct{}) {}, 1, time.Second},
		{"closed", func(l *listener, _ chan<- struct{}) { require.NoError(t, l.Close()) }, 0, 0},
		{"paused", func(l *listener, _ chan<- struct{}) { l.pause() }, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ready := make(chan struct{})
				close(ready)
				fake := newChanListener()
				l := newListener(fake, ready)
				setUp := make(chan struct{})
				got := acceptLoop(l, setUp)
				a, b := net.Pipe()
				fake.conns <- a
				c := <-got // the loop is setting c up

				t0 := time.Now()
				late := make(chan int, 1)
				go func() { late <- l.hold(time.Second) }()
				synctest.Wait()
				select {
				case n := <-late:
					t.Fatalf("hold returned (%d late) before the connection was set up", n)
				default:
				}
				tc.then(l, setUp)
				require.Equal(t, tc.wantLate, <-late)
				require.Equal(t, tc.wantTook, time.Since(t0))

				l.release()
				require.NoError(t, l.Close())
				close(setUp)
				for range got {
				}
				require.NoError(t, c.Close())
				require.NoError(t, b.Close())
			})
		})
	}
}

// A connection accepted just before a handoff, whose accept loop registers
// its machine and then the connection while the handoff holds the
// listener, travels with its machine: before, the handoff read the
// registries at once, took neither, and the loop's registrations came too
// late (the machine handed over without its connection, in the order
// Manage then Adopt; the connection left behind to drain).
func TestHandoffWaitsForAcceptedConnections(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "handoff")
	old := newSide(t, dir, false, WithCodes(sessionCode("v1")))
	ln, err := old.r.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, old.r.Ready())
	l := ln.(*listener)

	setUp := make(chan struct{})
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			<-setUp
			key := fmt.Sprintf("k%d", i)
			ref, err := fsm.Start(context.Background(), old.sys, sessionCode("v1"))
			if err == nil {
				err = old.h.Manage(key, ref)
			}
			if err == nil {
				err = old.h.Adopt(key, Conn{Conn: c, Owner: key,
					Pause:  func(context.Context) ([]byte, error) { return nil, nil },
					Resume: func() {}})
			}
			if err != nil {
				t.Errorf("setting up %s: %v", key, err)
				_ = c.Close()
			}
		}
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer func() { require.NoError(t, client.Close()) }()
	require.Eventually(t, func() bool {
		l.holdMu.Lock()
		defer l.holdMu.Unlock()
		return l.out == 1
	}, 10*time.Second, time.Millisecond, "the connection accepted")

	reply, done := old.upgrade(t)
	nw := successorOf(t, old, dir, WithCodes(sessionCode("v1")))
	type received struct {
		got *Restored
		err error
	}
	rc := make(chan received, 1)
	go func() {
		got, err := nw.h.Receive(context.Background())
		rc <- received{got, err}
	}()
	// Let the loop set the connection up once the handoff holds the
	// listener.
	require.Eventually(t, func() bool {
		l.holdMu.Lock()
		defer l.holdMu.Unlock()
		return l.held != nil
	}, 10*time.Second, time.Millisecond, "the hold")
	close(setUp)
	r := <-rc
	got, err := r.got, r.err
	require.NoError(t, err)
	require.Contains(t, got.Machines, "k0", "the machine travels")
	require.Contains(t, got.Conns, "k0", "with its connection")
	require.Equal(t, "k0", got.Conns["k0"].Owner)
	reply <- nil
	require.NoError(t, <-done)
	require.NotContains(t, old.log.String(), "not set up in time")
	require.NoError(t, got.Conns["k0"].Conn.Close())
	require.NoError(t, ln.Close())
	<-loopDone
}
