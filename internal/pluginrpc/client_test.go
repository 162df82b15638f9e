package pluginrpc

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCall(t *testing.T) {
	c, rec := testClient(t, "echo", WithMachine("echo"))
	ctx := context.Background()
	require.NoError(t, c.Start(ctx))
	require.Equal(t, Manifest{Machine: "echo", Versions: []string{"v1", "v2"}}, c.Manifest())

	out, err := c.Call(ctx, "m1", "upper", []byte("hello"))
	require.NoError(t, err)
	require.Equal(t, "HELLO", string(out))

	out, err = c.Call(ctx, "m1", "pid", nil)
	require.NoError(t, err)
	pid, err := strconv.Atoi(string(out))
	require.NoError(t, err)
	require.Equal(t, pid, c.Stats().PID)
	require.Equal(t, Stats{Starts: 1, PID: pid}, c.Stats())

	require.NoError(t, c.Close())
	requireGone(t, pid)
	_, err = c.Call(ctx, "m1", "echo", nil)
	require.ErrorIs(t, err, ErrClosed)
	require.True(t, rec.has("plugin started", "plugin=test-echo"))
}

func TestConcurrentKeys(t *testing.T) {
	c, _ := testClient(t, "echo")
	ctx := context.Background()
	require.NoError(t, c.Start(ctx))

	// One key held up in its handler holds up no other.
	held := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx, "held", "hold", []byte("gate"))
		held <- err
	}()

	countInOrder(t, c, 16, 30)
	select {
	case err := <-held:
		t.Fatalf("the held call returned: %v", err)
	default:
	}
	_, err := c.Call(ctx, "other", "release", []byte("gate"))
	require.NoError(t, err)
	require.NoError(t, <-held)
	require.Equal(t, 1, c.Stats().Starts)
}

// The release of the last Hold stops the process; a call in flight then
// fails as if the process had died, and the next call starts a new one.
func TestLastHoldStopsTheProcess(t *testing.T) {
	c, rec := testClient(t, "echo")
	ctx := context.Background()
	require.NoError(t, c.Start(ctx))
	first := c.Stats().PID

	r1, r2 := c.Hold(), c.Hold()
	r1()
	r1() // once only
	require.Equal(t, first, c.Stats().PID, "one hold is left")

	inFlight := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx, "k", "hold", []byte("never"))
		inFlight <- err
	}()
	require.Eventually(t, func() bool { return inFlightCalls(c) == 1 }, 5*time.Second, time.Millisecond)

	r2()
	err := <-inFlight
	require.ErrorIs(t, err, ErrPluginDied)
	require.ErrorContains(t, err, "the last machine that used it was released")
	require.Equal(t, Stats{Starts: 1, Stops: 1}, c.Stats())
	requireGone(t, first)
	require.True(t, rec.has("plugin stopped: no machine uses it"))

	out, err := c.Do(ctx, "k", "pid", nil)
	require.NoError(t, err)
	second, err := strconv.Atoi(string(out))
	require.NoError(t, err)
	require.NotEqual(t, first, second)
	require.Equal(t, Stats{Starts: 2, Stops: 1, PID: second}, c.Stats(), "a stop is not a failure")
}

// With an idle grace, the last release arms a stop instead of stopping;
// a hold taken before it fires keeps the same process, and a stop that
// fires with no hold stops it.
func TestIdleStopKeepsTheProcessForTheGrace(t *testing.T) {
	armed, delays := manualIdleStops(t)
	c, rec := testClient(t, "echo", WithIdleStop(time.Minute))
	ctx := context.Background()
	require.NoError(t, c.Start(ctx))
	first := c.Stats().PID

	r := c.Hold()
	r()
	require.Len(t, *armed, 1)
	require.Equal(t, []time.Duration{time.Minute}, *delays)
	require.Equal(t, first, c.Stats().PID, "still running within the grace")

	r = c.Hold() // a rollback brings a machine back
	require.True(t, (*armed)[0].stopped, "a new hold cancels the pending stop")
	(*armed)[0].f() // a stop that fires late anyway does nothing
	require.Equal(t, first, c.Stats().PID)
	out, err := c.Do(ctx, "k", "pid", nil)
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(first), string(out), "the same process serves")

	r()
	require.Len(t, *armed, 2)
	(*armed)[1].f()
	require.Equal(t, Stats{Starts: 1, Stops: 1}, c.Stats())
	requireGone(t, first)
	require.True(t, rec.has("plugin stopped: no machine uses it"))
}

// keysOnConns returns, for a process with a pool of n conns, one key
// carried by each conn, found among "key-0", "key-1", …
func keysOnConns(t *testing.T, c *Client, n int) []string {
	t.Helper()
	c.mu.Lock()
	p := c.cur
	c.mu.Unlock()
	require.NotNil(t, p)
	require.Len(t, p.conns, n)
	keys := make([]string, n)
	for i, left := 0, n; left > 0; i++ {
		require.Less(t, i, 1000, "no key found for every conn")
		k := fmt.Sprintf("key-%d", i)
		for j, pc := range p.conns {
			if pc == p.connFor(k) && keys[j] == "" {
				keys[j] = k
				left--
			}
		}
	}
	return keys
}

// TestPoolKeepsEachKeysOrder: the calls of many machines spread over the
// pool's connections (every connection carries some), and each machine's
// calls run once each, in the order sent.
func TestPoolKeepsEachKeysOrder(t *testing.T) {
	const conns, keys, calls = 4, 24, 40
	c, _ := testClient(t, "echo", WithConns(conns))
	ctx := context.Background()
	require.NoError(t, c.Start(ctx))

	c.mu.Lock()
	p := c.cur
	c.mu.Unlock()
	used := map[*conn]int{}
	for k := range keys {
		used[p.connFor(fmt.Sprintf("machine-%d", k))]++
	}
	require.Len(t, used, conns, "the keys spread over every connection")

	countInOrder(t, c, keys, calls)
	require.Equal(t, 1, c.Stats().Starts)
}

// countInOrder makes calls "incr" calls on each of keys machines
// ("machine-0" and on) at once, and fails the test unless each machine's
// calls ran once each, in the order sent (the echo plugin's incr counts
// per key).
func countInOrder(t *testing.T, c *Client, keys, calls int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, keys)
	for k := range keys {
		wg.Go(func() {
			key := fmt.Sprintf("machine-%d", k)
			for i := 1; i <= calls; i++ {
				out, err := c.Call(context.Background(), key, "incr", nil)
				if err != nil {
					errs <- err
					return
				}
				if string(out) != strconv.Itoa(i) {
					errs <- fmt.Errorf("%s: call %d counted %s", key, i, out)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// TestPoolSlowHandlerStallsNoOtherConn: with nudges turned off, a handler
// that does not return holds up its own connection only; a machine on
// another connection is answered. (On one connection, the second call
// would wait for the call timeout and fail.)
func TestPoolSlowHandlerStallsNoOtherConn(t *testing.T) {
	c, _ := testClient(t, "echo", WithConns(2), WithCallTimeout(3*time.Second))
	ctx := context.Background()
	require.NoError(t, c.Start(ctx))
	keys := keysOnConns(t, c, 2)
	c.mu.Lock()
	for _, pc := range c.cur.conns {
		pc.nudge = nil // no call has been made yet: no reader reads it
	}
	c.mu.Unlock()

	held := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx, keys[0], "hold", []byte("gate"))
		held <- err
	}()
	require.Eventually(t, func() bool { return inFlightCalls(c) == 1 }, 5*time.Second, time.Millisecond)
	for range 20 {
		out, err := c.Call(ctx, keys[1], "echo", []byte("meanwhile"))
		require.NoError(t, err)
		require.Equal(t, "meanwhile", string(out))
	}
	select {
	case err := <-held:
		t.Fatalf("the held call returned: %v", err)
	default:
	}
	_, err := c.Call(ctx, keys[1], "release", []byte("gate"))
	require.NoError(t, err)
	require.NoError(t, <-held)
	require.Equal(t, Stats{Starts: 1, PID: c.Stats().PID}, c.Stats())
}

// The last hold released while a process is starting (its start outlives
// the caller that asked for it: here a Start whose ctx ended) stops that
// process once it has started: nothing uses it, and it must not run on
// for nobody.
func TestLastHoldReleasedDuringAStart(t *testing.T) {
	c, rec := testClient(t, "echo")
	release := c.Hold()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, c.Start(ctx), context.Canceled) // the start goes on
	release()
	require.Eventually(t, func() bool { return c.Stats().Starts == 1 }, 10*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return c.Stats().Stops == 1 }, 10*time.Second, time.Millisecond,
		"the process started for no one is stopped")
	require.Zero(t, c.Stats().PID)
	require.True(t, rec.has("plugin stopped: no machine uses it"))

	// A hold taken before the start ends keeps the process.
	release = c.Hold()
	require.NoError(t, c.Start(context.Background()))
	require.NotZero(t, c.Stats().PID)
	release()
	require.Zero(t, c.Stats().PID)
	require.Equal(t, 2, c.Stats().Stops)
}
