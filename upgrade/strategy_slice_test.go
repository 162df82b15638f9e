package upgrade

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
)

// stepClock is a clock that moves on by step at each reading, and counts
// the yields of the workers that read it.
type stepClock struct {
	mu     sync.Mutex
	now    time.Time
	step   time.Duration
	yields int
}

func (c *stepClock) read() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.step)
	return c.now
}

func (c *stepClock) yield() {
	c.mu.Lock()
	c.yields++
	c.mu.Unlock()
}

func (c *stepClock) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.yields
}

func TestRollWorkerYieldsBeforeTheSliceEnds(t *testing.T) {
	clock := &stepClock{now: time.Unix(0, 0)}
	w := rollWorker{h: &ReleaseHandler{cfg: releaseConfig{now: clock.read, gosched: clock.yield}}}
	// The readings, each step after the last: the first starts the slice.
	for i, tc := range []struct {
		step  time.Duration
		yield bool
	}{
		{0, false},                             // starts the slice at 0
		{rollSlice / 2, false},                 // half of it used
		{rollSlice/2 - time.Nanosecond, false}, // just short of it
		{time.Nanosecond, true},                // used up: yield, and a new slice
		{rollSlice - time.Nanosecond, false},
		{time.Hour, true}, // a worker that waited long (descheduled) yields once
		{0, false},
	} {
		clock.step = tc.step
		before := clock.count()
		w.fresh()
		require.Equal(t, tc.yield, clock.count() > before, "reading %d", i)
	}
}

// TestRollingYieldsBetweenMachines: a rolling worker that has run for a
// time slice yields before it suspends its next machine, never with one
// suspended; an all-at-once upgrade does not yield.
func TestRollingYieldsBetweenMachines(t *testing.T) {
	const n = 40
	for _, tc := range []struct {
		strategy Strategy
		yields   bool
	}{
		{Rolling(8), true},
		{AllAtOnce(), false},
	} {
		t.Run(tc.strategy.String(), func(t *testing.T) {
			ctx := context.Background()
			sys := actor.NewSystem(actor.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
			t.Cleanup(func() { require.NoError(t, sys.Shutdown(ctx)) })
			// Every reading of the clock is a millisecond after the last: a
			// worker uses up its slice every other machine or so.
			clock := &stepClock{now: time.Unix(0, 0), step: time.Millisecond}
			var suspendedAtYield []actor.Ref
			var mu sync.Mutex
			refs := make([]actor.Ref, n)
			yield := func() {
				clock.yield()
				// The one worker yields with no machine suspended.
				mu.Lock()
				defer mu.Unlock()
				for _, r := range refs {
					// ErrNotSuspended unless it is suspended.
					if _, err := actor.QueuedMessages(ctx, r); !errors.Is(err, actor.ErrNotSuspended) {
						suspendedAtYield = append(suspendedAtYield, r)
					}
				}
			}
			h, err := NewReleaseHandler(sys, WithReleaseLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
				WithWorkers(1), func(c *releaseConfig) { c.now, c.gosched = clock.read, yield })
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, h.Close(ctx)) })
			require.NoError(t, h.Register(sliceCode("v1")))
			require.NoError(t, h.Register(sliceCode("v2")))
			for i := range refs {
				refs[i], err = h.Start(ctx, "slice", fsm.WithID(fmt.Sprintf("m%02d", i)))
				require.NoError(t, err)
			}
			rep, err := h.Upgrade(ctx, "slice", "v2", WithStrategy(tc.strategy))
			require.NoError(t, err)
			require.Equal(t, n, rep.Changed)
			if !tc.yields {
				require.Zero(t, clock.count())
				return
			}
			// One worker, n machines, at least one clock reading per
			// machine: it used up a slice at least every other machine.
			require.GreaterOrEqual(t, clock.count(), n/4)
			require.Empty(t, suspendedAtYield, "machines suspended while their worker yielded")
		})
	}
}

func sliceCode(version string) *fsm.Machine[int] {
	m := fsm.Define("slice", version, "on", 0)
	m.OnUpgrade(func(from, state string, raw msgpack.RawMessage) (string, int, error) {
		var d int
		return state, d, msgpack.Unmarshal(raw, &d)
	})
	m.OnDowngrade(func(to, state string, d int) (string, any, error) { return state, d, nil })
	return m
}
