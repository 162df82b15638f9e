package exchange_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hotline-go/hotline/examples/phoneswitch/exchange"
	"github.com/hotline-go/hotline/examples/phoneswitch/phone"
	"github.com/stretchr/testify/require"
)

// stream sends numbered frames from each phone until stop is closed; it
// returns how many each sent.
func stream(t *testing.T, stop <-chan struct{}, phones ...*client) func() []int {
	var wg sync.WaitGroup
	sent := make([]int, len(phones))
	for i, p := range phones {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					sent[i] = n
					return
				default:
				}
				// Lines cut in two on the wire test the handoff of unread bytes.
				line := fmt.Sprintf("AUDIO %d f%d\n", n, n)
				for _, part := range []string{line[:4], line[4:]} {
					_, err := p.nc.Write([]byte(part))
					require.NoError(t, err)
				}
			}
		})
	}
	return func() []int {
		wg.Wait()
		return sent
	}
}

func expectFrames(t *testing.T, c *client, n int) {
	t.Helper()
	for i := range n {
		require.Equal(t, fmt.Sprintf("AUDIO %d f%d", i, i), c.read())
	}
}

// Live calls move from one switch to another, mid-stream, with their
// connections and machines: none of their frames is lost or reordered.
func TestHandoff(t *testing.T) {
	ctx := context.Background()
	old, addr := start(t)
	successor, _ := start(t)
	a, b := phoneOn(t, addr, "100"), phoneOn(t, addr, "200")
	idle := dial(t, addr) // not registered yet
	call(a, b, "200", "100")
	_, err := old.Upgrade(ctx, "v2")
	require.NoError(t, err)

	stop := make(chan struct{})
	wait := stream(t, stop, a, b)
	time.Sleep(20 * time.Millisecond) // real frames on the wire, in flight

	h, err := old.Detach(ctx)
	require.NoError(t, err)
	require.Len(t, h.Lines, 3)
	require.Equal(t, "v2", h.Version)
	require.Equal(t, "v1", h.Previous)
	_, err = old.Upgrade(ctx, "v1")
	require.ErrorIs(t, err, exchange.ErrDetached)
	_, err = old.Detach(ctx)
	require.ErrorIs(t, err, exchange.ErrDetached)

	require.NoError(t, successor.Adopt(ctx, h))
	require.NoError(t, old.Release(ctx))
	time.Sleep(20 * time.Millisecond)
	close(stop)
	sent := wait()
	expectFrames(t, b, sent[0])
	expectFrames(t, a, sent[1])

	a.do("STATUS", fmt.Sprintf("STATUS 100 in_progress v2 peer=200 dir=out since=%d calls=1 frames_in=%d frames_out=%d", connectedAt, sent[1], sent[0]))
	idle.do("REGISTER 300", "OK REGISTERED 300")
	idle.do("STATUS", "STATUS 300 off v2 calls=0 frames_in=0 frames_out=0")
	require.Equal(t, exchange.Status{Version: "v2", Previous: "v1", Phones: 3, Conns: 3}, successor.Status())
	require.Equal(t, 0, old.Status().Phones)
	_, err = successor.Rollback(ctx)
	require.NoError(t, err)
	a.do("ONHOOK", "ONHOOK")
	b.expect("HANGUP")
}

// A handoff that fails puts everything back.
func TestReattach(t *testing.T) {
	ctx := context.Background()
	s, addr := start(t)
	a, b := phoneOn(t, addr, "100"), phoneOn(t, addr, "200")
	call(a, b, "200", "100")
	stop := make(chan struct{})
	wait := stream(t, stop, a, b)
	time.Sleep(20 * time.Millisecond)
	h, err := s.Detach(ctx)
	require.NoError(t, err)
	require.Len(t, h.Lines, 2)
	require.NoError(t, s.Reattach(ctx))
	time.Sleep(20 * time.Millisecond)
	close(stop)
	sent := wait()
	expectFrames(t, b, sent[0])
	expectFrames(t, a, sent[1])
	_, err = s.Upgrade(ctx, "v2")
	require.NoError(t, err)
	b.do("STATUS", fmt.Sprintf("STATUS 200 in_progress v2 peer=100 dir=in since=%d calls=1 frames_in=%d frames_out=%d", connectedAt, sent[0], sent[1]))
}

// A machine snapshot of a version the successor runs differently is
// moved to the successor's version.
func TestAdoptAcrossVersions(t *testing.T) {
	ctx := context.Background()
	old, addr := start(t)
	successor, _ := start(t, exchange.WithVersions(phone.V1(), phone.V2()))
	a, b := phoneOn(t, addr, "100"), phoneOn(t, addr, "200")
	call(a, b, "200", "100")
	h, err := old.Detach(ctx)
	require.NoError(t, err)
	for i := range h.Lines {
		require.Equal(t, "v1", h.Lines[i].Machine.Version)
	}
	h.Version = "v2" // as if the old switch had been told to move on
	require.NoError(t, successor.Adopt(ctx, h))
	require.NoError(t, old.Release(ctx))
	a.do("STATUS", fmt.Sprintf("STATUS 100 in_progress v2 peer=200 dir=out since=%d calls=1 frames_in=0 frames_out=0", connectedAt))
}
