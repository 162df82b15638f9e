package upgrade_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/upgrade"
)

func TestRollingMovesAllKAtATime(t *testing.T) {
	ctx := context.Background()
	_, h := newRelease(t)
	const n, k, incs = 50, 4, 100
	refs := startN(t, h, n)

	// Events flow to every machine while the rollout runs.
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	wg.Go(func() {
		for range incs {
			for _, r := range refs {
				if err := fsm.Cast(r, Inc{}); err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
			}
		}
	})
	var batches []upgrade.Progress
	rep, err := h.Upgrade(ctx, "counter", "v2", upgrade.WithStrategy(upgrade.Rolling(k)),
		upgrade.WithProgress(func(p upgrade.Progress) {
			if p.Phase == "batch" {
				batches = append(batches, p)
			}
		}))
	wg.Wait()
	require.NoError(t, err)
	close(errs)
	require.NoError(t, <-errs)

	require.Equal(t, "ok", rep.Result)
	require.Equal(t, "rolling(4)", rep.Strategy)
	require.Equal(t, n, rep.Changed)
	require.LessOrEqual(t, rep.MaxSuspended, k, "at most k machines suspended at once")
	require.Positive(t, rep.MaxSuspended)
	require.Len(t, batches, (n+k-1)/k, "progress per batch")
	nb := (n + k - 1) / k
	require.Equal(t, upgrade.Progress{Phase: "batch", Done: n, Total: n, Batch: nb, Batches: nb,
		Detail: fmt.Sprintf("batch %d of %d: %d of %d machines moved", nb, nb, n, n)}, batches[len(batches)-1])
	for i := 1; i < len(batches); i++ {
		require.LessOrEqual(t, batches[i].Done-batches[i-1].Done, k)
	}
	for _, inf := range infos(t, refs) {
		require.Equal(t, "v2", inf.Version)
		var d CountV2
		require.NoError(t, msgpack.Unmarshal(inf.Data, &d))
		require.Equal(t, incs, d.N, "no event lost")
	}
	require.Equal(t, "v2", status(t, h).Current)
}

func TestRollingFailureMovesTheMovedBackByDowngrade(t *testing.T) {
	ctx := context.Background()
	_, h := newRelease(t)
	refs := startN(t, h, 9)
	// The last by ID order: its UPGRADE refuses a negative count.
	bad, err := counterV1().Snapshot("on", CountV1{N: -5})
	require.NoError(t, err)
	badRef, err := h.Restore(ctx, bad, fsm.WithID("zz-bad"))
	require.NoError(t, err)

	batches := 0
	rep, err := h.Upgrade(ctx, "counter", "v2", upgrade.WithStrategy(upgrade.Rolling(2)),
		upgrade.WithProgress(func(p upgrade.Progress) {
			if p.Phase != "batch" {
				return
			}
			batches++
			for _, r := range refs { // the moved ones handle it on v2
				require.NoError(t, fsm.Cast(r, Inc{}))
			}
		}))
	require.ErrorIs(t, err, upgrade.ErrRolledBack)
	require.ErrorIs(t, err, errBad)
	var me *upgrade.MachineError
	require.ErrorAs(t, err, &me)
	require.Equal(t, "zz-bad", me.ID)
	require.Equal(t, "rolled back", rep.Result)
	require.Equal(t, 0, rep.Changed)
	require.Equal(t, 9, rep.RolledBack)
	require.Equal(t, 5, batches)

	for _, inf := range infos(t, refs) {
		require.Equal(t, "v1", inf.Version)
		var d CountV1
		require.NoError(t, msgpack.Unmarshal(inf.Data, &d))
		require.Equal(t, 5, d.N, "moved back on its current data, events handled on v2 kept")
	}
	require.Equal(t, "v1", infos(t, []actor.Ref{badRef})[0].Version)
	st := status(t, h)
	require.Equal(t, "v1", st.Current)
	require.Equal(t, map[string]int{"v1": 10}, counts(st))
}

func TestPhasedRollout(t *testing.T) {
	ctx := context.Background()
	_, h := newRelease(t)
	start := func(id, cohort string) {
		_, err := h.Start(ctx, "counter", fsm.WithID(id), fsm.WithTags(map[string]string{"cohort": cohort}))
		require.NoError(t, err)
	}
	for i := range 2 {
		start(fmt.Sprintf("staff%d", i), "staff")
	}
	for i := range 3 {
		start(fmt.Sprintf("beta%d", i), "beta")
	}
	for i := range 5 {
		start(fmt.Sprintf("user%d", i), "users")
	}
	phase := func(sel upgrade.Selector, changed int, current string, want map[string]int) {
		t.Helper()
		rep, err := h.Upgrade(ctx, "counter", "v2", upgrade.WithSelector(sel), upgrade.WithStrategy(upgrade.Rolling(2)))
		require.NoError(t, err)
		require.Equal(t, changed, rep.Changed)
		st := status(t, h)
		require.Equal(t, current, st.Current)
		require.Equal(t, want, counts(st))
	}
	phase(upgrade.Selector{Tags: map[string]string{"cohort": "staff"}}, 2, "v1", map[string]int{"v1": 8, "v2": 2})
	phase(upgrade.Selector{Tags: map[string]string{"cohort": "beta"}}, 3, "v1", map[string]int{"v1": 5, "v2": 5})
	phase(upgrade.Selector{}, 5, "v2", map[string]int{"v2": 10})
}

// Boom makes the faulty v2 of the counter panic.
type Boom struct{}

func faultyV2() *fsm.Machine[CountV2] {
	m := counterV2(nil, nil)
	fsm.On(m, "on", func(_ Boom, d CountV2) fsm.Result[CountV2] { panic("boom") })
	return m
}

func newFaultyRelease(t *testing.T) *upgrade.ReleaseHandler {
	t.Helper()
	sys := actor.NewSystem(actor.WithLogger(quiet()))
	h, err := upgrade.NewReleaseHandler(sys, upgrade.WithReleaseLogger(quiet()))
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, h.Close(context.Background()))
		require.NoError(t, sys.Shutdown(context.Background()))
	})
	require.NoError(t, h.Register(counterV1()))
	require.NoError(t, h.Register(faultyV2()))
	return h
}

func TestCanaryPromoted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		h := newFaultyRelease(t)
		refs := startN(t, h, 10)
		var checked []actor.Ref
		t0 := time.Now()
		rep, err := h.Upgrade(ctx, "counter", "v2", upgrade.WithStrategy(upgrade.Canary(
			upgrade.CanaryPercent(20), upgrade.CanaryWindow(30*time.Second),
			upgrade.CanaryThen(upgrade.Rolling(3)),
			upgrade.CanaryHealth(func(_ context.Context, c []actor.Ref) error { checked = c; return nil }),
		)))
		require.NoError(t, err)
		require.GreaterOrEqual(t, time.Since(t0), 30*time.Second, "watched for the window")
		require.Equal(t, "promoted", rep.Verdict)
		require.Contains(t, rep.Reason, "2 canaries healthy")
		require.Equal(t, 2, rep.Canaries)
		require.Len(t, checked, 2)
		require.Equal(t, 10, rep.Changed)
		require.Equal(t, 10, rep.Selected)
		require.Equal(t, "ok", rep.Result)
		for _, inf := range infos(t, refs) {
			require.Equal(t, "v2", inf.Version)
		}
		require.Equal(t, "v2", status(t, h).Current)
	})
}

func TestCanaryRollsBackOnCrash(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		h := newFaultyRelease(t)
		refs := startN(t, h, 10)
		for _, r := range refs {
			require.NoError(t, fsm.Cast(r, Inc{}))
		}
		rep, err := h.Upgrade(ctx, "counter", "v2", upgrade.WithStrategy(upgrade.Canary(
			upgrade.CanaryCount(2), upgrade.CanaryWindow(10*time.Second))),
			upgrade.WithProgress(func(p upgrade.Progress) {
				if p.Phase == "canaries" {
					// m0 and m1 are the canaries (ID order); v2 panics on Boom.
					require.NoError(t, fsm.Cast(refs[1], Inc{}))
					require.NoError(t, fsm.Cast(refs[0], Boom{}))
				}
			}))
		require.ErrorIs(t, err, upgrade.ErrCanaryFailed)
		require.Equal(t, "rolled back", rep.Verdict)
		require.Contains(t, rep.Reason, "exited")
		require.Equal(t, "rolled back", rep.Result)
		require.Equal(t, 1, rep.RolledBack, "the canary still alive moved back")
		require.Equal(t, 0, rep.Changed)

		infs := infos(t, refs[1:])
		require.Equal(t, "v1", infs[0].Version)
		var d CountV1
		require.NoError(t, msgpack.Unmarshal(infs[0].Data, &d))
		require.Equal(t, 2, d.N, "downgraded on its current data")
		for _, inf := range infs[1:] {
			require.Equal(t, "v1", inf.Version, "the rest never moved")
		}
		require.Equal(t, "v1", status(t, h).Current)
	})
}

func TestCanaryRollsBackOnFailedHealthCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		h := newFaultyRelease(t)
		refs := startN(t, h, 4)
		errSick := errors.New("error rate 12%")
		rep, err := h.Upgrade(ctx, "counter", "v2", upgrade.WithStrategy(upgrade.Canary(
			upgrade.CanaryHealth(func(context.Context, []actor.Ref) error { return errSick }))))
		require.ErrorIs(t, err, upgrade.ErrCanaryFailed)
		require.Equal(t, "rolled back", rep.Verdict)
		require.Equal(t, "health check failed: error rate 12%", rep.Reason)
		require.Equal(t, 1, rep.Canaries)
		require.Equal(t, 1, rep.RolledBack)
		for _, inf := range infos(t, refs) {
			require.Equal(t, "v1", inf.Version)
		}
		st := status(t, h)
		require.Equal(t, "v1", st.Current)
		require.Equal(t, "rolled back", st.Last.Verdict)
	})
}

func TestRollingPause(t *testing.T) {
	for _, tt := range []struct {
		name  string
		pause time.Duration
		want  time.Duration
	}{
		{"between batches", time.Second, 2 * time.Second},
		{"bounded to a minute", time.Hour, 2 * time.Minute},
		{"negative is none", -time.Second, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				_, h := newRelease(t)
				startN(t, h, 6)
				t0 := time.Now()
				rep, err := h.Upgrade(t.Context(), "counter", "v2",
					upgrade.WithStrategy(upgrade.Rolling(2, upgrade.RollingPause(tt.pause))))
				require.NoError(t, err)
				require.Equal(t, 6, rep.Changed)
				require.Equal(t, tt.want, time.Since(t0), "3 batches, 2 pauses")
			})
		})
	}
}

func TestRollingCancelledMovesBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, h := newRelease(t)
		refs := startN(t, h, 6)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		rep, err := h.Upgrade(ctx, "counter", "v2", upgrade.WithStrategy(upgrade.Rolling(2, upgrade.RollingPause(time.Second))),
			upgrade.WithProgress(func(p upgrade.Progress) {
				if p.Phase == "batch" && p.Done == 2 {
					cancel()
				}
			}))
		require.ErrorIs(t, err, upgrade.ErrRolledBack)
		require.ErrorIs(t, err, context.Canceled)
		require.Equal(t, 2, rep.RolledBack)
		for _, inf := range infos(t, refs) {
			require.Equal(t, "v1", inf.Version)
		}
		require.Equal(t, "v1", status(t, h).Current)
	})
}

func TestCanaryRestFailsMovesCanariesBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		h := newFaultyRelease(t)
		refs := startN(t, h, 4)
		bad, err := counterV1().Snapshot("on", CountV1{N: -5})
		require.NoError(t, err)
		_, err = h.Restore(ctx, bad, fsm.WithID("zz-bad"))
		require.NoError(t, err)
		rep, err := h.Upgrade(ctx, "counter", "v2", upgrade.WithStrategy(upgrade.Canary(upgrade.CanaryCount(2))))
		require.ErrorIs(t, err, upgrade.ErrRolledBack)
		require.ErrorIs(t, err, errBad)
		require.Equal(t, "rolled back", rep.Verdict)
		require.Contains(t, rep.Reason, "moving the rest failed")
		require.Equal(t, 2, rep.RolledBack)
		require.Equal(t, 0, rep.Changed)
		for _, inf := range infos(t, refs) {
			require.Equal(t, "v1", inf.Version)
		}
		require.Equal(t, "v1", status(t, h).Current)
	})
}

// A machine started during a rolling rollout starts at once (the start
// lock is not held through the rollout), on the old version, and is moved
// at the end, in a batch of its own.
func TestRollingLetsMachinesStartMeanwhile(t *testing.T) {
	ctx := context.Background()
	_, h := newRelease(t)
	startN(t, h, 6)
	var late actor.Ref
	var lines []upgrade.Progress
	rep, err := h.Upgrade(ctx, "counter", "v2", upgrade.WithStrategy(upgrade.Rolling(2)),
		upgrade.WithProgress(func(p upgrade.Progress) {
			lines = append(lines, p)
			if p.Batch == 1 {
				// On the upgrade's own goroutine: it would wait forever
				// if the rollout held the start lock.
				var err error
				late, err = h.Start(ctx, "counter", fsm.WithID("late"))
				require.NoError(t, err)
				require.Equal(t, "v1", version(t, late), "started on the current version")
			}
		}))
	require.NoError(t, err)
	require.Equal(t, 7, rep.Selected)
	require.Equal(t, 7, rep.Changed)
	require.Equal(t, "v2", version(t, late))
	last := lines[len(lines)-1]
	require.Equal(t, 4, last.Batch)
	require.Equal(t, 4, last.Batches)
	require.Equal(t, map[string]int{"v2": 7}, counts(status(t, h)))
}
