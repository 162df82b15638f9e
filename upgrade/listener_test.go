package upgrade

import (
	"context"
	"errors"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// inheritedCopy returns a listener on the same socket as ln, as the new
// process gets it from tableflip.
func inheritedCopy(t *testing.T, ln net.Listener) net.Listener {
	t.Helper()
	f, err := ln.(*listener).Listener.(*net.TCPListener).File()
	require.NoError(t, err)
	defer f.Close()
	cp, err := net.FileListener(f)
	require.NoError(t, err)
	// A test that fails must not hang.
	require.NoError(t, cp.(*net.TCPListener).SetDeadline(time.Now().Add(10*time.Second)))
	t.Cleanup(func() { _ = cp.Close() })
	return cp
}

// waitAcceptIn waits until a goroutine is in listener.Accept in the given
// scheduler state: "select" (waiting for Ready), "IO wait" (in the socket,
// parked in the network poller) or "chan receive" (paused, waiting for
// Close).
func waitAcceptIn(t *testing.T, state string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, 1<<20)
	for time.Now().Before(deadline) {
		stacks := string(buf[:runtime.Stack(buf, true)])
		for g := range strings.SplitSeq(stacks, "\n\n") {
			if strings.Contains(g, "["+state) && strings.Contains(g, "upgrade.(*listener).Accept") {
				return
			}
		}
		runtime.Gosched()
	}
	t.Fatalf("no goroutine in Accept in state %q", state)
}

type accepted struct {
	c   net.Conn
	err error
}

// acceptAll accepts on ln until it fails, handing each result to the
// returned channel.
func acceptAll(ln net.Listener) <-chan accepted {
	got := make(chan accepted)
	go func() {
		for {
			c, err := ln.Accept()
			got <- accepted{c, err}
			if err != nil {
				return
			}
		}
	}()
	return got
}

func TestListenerStopsAcceptingAfterHandoff(t *testing.T) {
	f := newFakeFlip()
	r, _ := testRestarter(t, f)
	ln, err := r.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	next := inheritedCopy(t, ln)
	require.NoError(t, r.Ready())

	old := acceptAll(ln)
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	a := <-old
	require.NoError(t, a.err)
	require.NoError(t, a.c.Close())
	require.NoError(t, c.Close())

	// The handoff: this process's Accept, parked in the socket, must leave it
	// and stop taking connections, so that those that arrive wait in the
	// queue for the new process. (Go's poller can still hand an Accept woken
	// by the deadline, but not yet run, a connection that arrives meanwhile:
	// the old process then serves that one. Waiting until it has left the
	// socket rules that out here.)
	waitAcceptIn(t, "IO wait")
	go answer(t, f, nil)
	require.NoError(t, r.Upgrade(t.Context()))
	waitAcceptIn(t, "chan receive")
	const n = 10
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err, "nothing is refused")
		defer c.Close()
	}
	fromNext := acceptAll(next)
	for range n {
		select {
		case a := <-fromNext:
			require.NoError(t, a.err)
			require.NoError(t, a.c.Close())
		case a := <-old:
			t.Fatalf("the old process accepted a connection after the handoff: %v", a)
		}
	}

	// An Accept called after the handoff waits for Close.
	later := acceptAll(ln)
	require.NoError(t, ln.Close())
	require.ErrorIs(t, (<-old).err, net.ErrClosed)
	require.ErrorIs(t, (<-later).err, net.ErrClosed)
	require.NoError(t, ln.Close(), "closing twice is fine")
	require.NoError(t, next.Close())
	require.ErrorIs(t, (<-fromNext).err, net.ErrClosed)
}

func TestListenerAcceptsOnlyOnceReady(t *testing.T) {
	f := newFakeFlip()
	f.hasParent = true
	r, _ := testRestarter(t, f)
	ln, err := r.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	prev := inheritedCopy(t, ln) // the previous process, which still serves

	got := acceptAll(ln) // this process serves before it is ready
	waitAcceptIn(t, "select")
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	pc, err := prev.Accept()
	require.NoError(t, err, "the connection went to the previous process")
	require.NoError(t, pc.Close())

	require.NoError(t, r.Ready())
	waitAcceptIn(t, "IO wait")
	c2, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c2.Close()
	a := <-got
	require.NoError(t, a.err)
	require.NoError(t, a.c.Close())

	require.NoError(t, ln.Close())
	require.ErrorIs(t, (<-got).err, net.ErrClosed)
}

func TestPausedListenerKeepsHTTPServerServing(t *testing.T) {
	f := newFakeFlip()
	r, _ := testRestarter(t, f)
	ln, err := r.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: r.HealthHandler()}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	r.OnDrain(srv.Shutdown)
	require.NoError(t, r.Ready())

	go answer(t, f, nil)
	require.NoError(t, r.Upgrade(t.Context()))
	require.NoError(t, r.Drain(t.Context()))
	// Serve returned only because of Shutdown, with its usual error.
	require.ErrorIs(t, <-served, http.ErrServerClosed)
}

func TestDrainClosesSocketsAfterHooks(t *testing.T) {
	f := newFakeFlip()
	r, _ := testRestarter(t, f)
	ln, err := r.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	pc, err := r.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	_, isUDP := pc.(*net.UDPConn)
	assert.True(t, isUDP, "packet conns are the net package's own")
	require.NoError(t, r.Ready())

	r.OnDrain(func(context.Context) error {
		// Still open while the hooks run.
		_, err := pc.WriteTo([]byte("x"), pc.LocalAddr())
		return err
	})
	require.NoError(t, r.Drain(t.Context()))

	_, err = ln.Accept()
	require.ErrorIs(t, err, net.ErrClosed)
	_, _, err = pc.ReadFrom(make([]byte, 1))
	require.ErrorIs(t, err, net.ErrClosed)

	_, err = r.Listen("tcp", "127.0.0.1:0")
	require.ErrorIs(t, err, ErrDraining)
	_, err = r.ListenPacket("udp", "127.0.0.1:0")
	require.ErrorIs(t, err, ErrDraining)
}

func TestStopClosesSocketsWithoutHooks(t *testing.T) {
	f := newFakeFlip()
	r, _ := testRestarter(t, f)
	ln, err := r.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r.OnDrain(func(context.Context) error { return errors.New("must not run") })
	r.Stop()
	_, err = ln.Accept()
	require.ErrorIs(t, err, net.ErrClosed)
	require.ErrorIs(t, r.Drain(t.Context()), ErrDraining)
}
