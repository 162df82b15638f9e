package upgrade

import (
	"context"
	"errors"
	"net"
	"net/http"
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

func TestListenerStopsAcceptingAfterHandoff(t *testing.T) {
	f := newFakeFlip()
	r, _ := testRestarter(t, f)
	ln, err := r.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	next := inheritedCopy(t, ln)
	require.NoError(t, r.Ready())

	type accepted struct {
		c   net.Conn
		err error
	}
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

	c1, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c1.Close()
	a := <-got
	require.NoError(t, a.err)
	require.NoError(t, a.c.Close())

	// The handoff: this process's Accept, blocked in the socket, must stop
	// taking connections, so the new process gets every one of them.
	go answer(t, f, nil)
	require.NoError(t, r.Upgrade(t.Context()))
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err, "nothing is refused")
		nc, err := next.Accept()
		require.NoError(t, err)
		require.NoError(t, nc.Close())
		require.NoError(t, c.Close())
	}

	require.NoError(t, ln.Close())
	a = <-got
	require.ErrorIs(t, a.err, net.ErrClosed)
	require.NoError(t, ln.Close(), "closing twice is fine")
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
