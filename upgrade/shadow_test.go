package upgrade_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/upgrade"
)

// session sends Inc×3, Get, Double, Get to ref and checks the live
// version's answers: 3, 6, 6.
func session(t testing.TB, ref actor.Ref) {
	t.Helper()
	for range 3 {
		require.NoError(t, fsm.Cast(ref, Inc{}))
	}
	for _, want := range []struct {
		ev  any
		ans int
	}{{Get{}, 3}, {Double{}, 6}, {Get{}, 6}} {
		got, err := call(t, ref, want.ev)
		require.NoError(t, err)
		require.Equal(t, want.ans, got, "the live version answers")
	}
}

// Shadow v2 differs from v1 on Double only: the shadow counts each Double
// as a divergence, samples it, and lets nothing out (v2 asks to stop, to
// insert an Inc and to set a timeout).
func TestShadowDetectsDivergence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		h := newCalc(t)
		refs := startCalc(t, h, []string{"m0", "m1", "m2"})
		var phases []string
		rep, err := h.Upgrade(ctx, "calc", "v2", upgrade.WithStrategy(upgrade.Shadow()),
			upgrade.WithProgress(func(p upgrade.Progress) { phases = append(phases, p.Phase) }))
		require.NoError(t, err)
		require.Equal(t, "ok", rep.Result)
		require.Equal(t, "shadow", rep.Strategy)
		require.Equal(t, 3, rep.Changed)
		require.Equal(t, []string{"shadowed"}, phases)

		for _, r := range refs {
			session(t, r)
		}
		time.Sleep(time.Second) // the bubble's clock: past v2's state timeout
		synctest.Wait()
		// A machine started meanwhile is shadowed too.
		late := startCalc(t, h, []string{"late"})
		session(t, late["late"])

		for _, r := range refs {
			require.Equal(t, "v1", version(t, r), "the machines stay on their version")
			got, err := call(t, r, Get{})
			require.NoError(t, err)
			require.Equal(t, 6, got, "no Inc from the shadow's actions reached the machine")
		}
		sr, err := h.ShadowReport("calc")
		require.NoError(t, err)
		require.True(t, sr.Active)
		require.Equal(t, 4, sr.Machines)
		require.Equal(t, int64(4*6+3), sr.Mirrored, "every event of the shadowed machines")
		require.Equal(t, int64(4), sr.Diverged, "one Double per machine")
		require.Equal(t, map[string]int64{"Double": 4}, sr.ByEvent)
		require.Len(t, sr.Samples, 4)
		s := sr.Samples[0]
		require.Equal(t, "Double", s.Event)
		require.Equal(t, []string{"6"}, s.LiveReplies)
		require.Equal(t, []string{"12"}, s.ShadowReplies)
		require.Equal(t, "on", s.LiveState)
		require.Equal(t, int64(0), sr.Failed)

		st := calcStatus(t, h)
		require.Equal(t, "v1", st.Current)
		require.NotNil(t, st.Shadow)
		require.Equal(t, sr.Diverged, st.Shadow.Diverged)
		require.Equal(t, []string{"v1", "v2"}, loaded(st))

		// Ended: nothing more is mirrored, and v2 is unloaded.
		end, err := h.EndShadow(ctx, "calc")
		require.NoError(t, err)
		require.False(t, end.Active)
		require.NoError(t, fsm.Cast(refs["m0"], Double{}))
		require.NoError(t, fsm.Sync(ctx, refs["m0"]))
		sr, err = h.ShadowReport("calc")
		require.NoError(t, err)
		require.Equal(t, end.Mirrored, sr.Mirrored)
		require.Equal(t, []string{"v1"}, loaded(calcStatus(t, h)))
	})
}

func TestShadowOptions(t *testing.T) {
	ctx := context.Background()
	h := newCalc(t)
	refs := startCalc(t, h, []string{"m0", "m1"})
	_, err := h.ShadowReport("calc")
	require.ErrorIs(t, err, upgrade.ErrNoShadow)

	_, err = h.Upgrade(ctx, "calc", "v2", upgrade.WithStrategy(upgrade.Shadow(upgrade.ShadowEvents("Get"))))
	require.NoError(t, err)
	for _, r := range refs {
		session(t, r)
	}
	sr, err := h.ShadowReport("calc")
	require.NoError(t, err)
	require.Equal(t, []string{"Get"}, sr.Events)
	require.Equal(t, int64(4), sr.Mirrored, "two Gets per machine")
	require.Zero(t, sr.Diverged)

	// A new shadow replaces the last; samples are bounded.
	stopAll(t, refs)
	refs = startCalc(t, h, []string{"n0", "n1"})
	_, err = h.Upgrade(ctx, "calc", "v2", upgrade.WithStrategy(upgrade.Shadow(upgrade.ShadowSamples(1))))
	require.NoError(t, err)
	for _, r := range refs {
		session(t, r)
	}
	sr, err = h.ShadowReport("calc")
	require.NoError(t, err)
	require.Equal(t, int64(2), sr.Diverged)
	require.Len(t, sr.Samples, 1)

	// A shadow runs a newer version.
	_, err = h.Upgrade(ctx, "calc", "v3")
	require.NoError(t, err)
	_, err = h.Upgrade(ctx, "calc", "v2", upgrade.WithStrategy(upgrade.Shadow()))
	require.ErrorContains(t, err, "a shadow runs a newer version")
	_, err = h.Rollback(ctx, "calc", upgrade.WithStrategy(upgrade.Shadow()))
	require.ErrorContains(t, err, "only an upgrade starts a shadow")
}

// ShadowWindow runs the shadow for the window, with progress lines, then
// ends it and reports.
func TestShadowWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		h := newCalc(t)
		refs := startCalc(t, h, []string{"m0", "m1"})
		var lines []upgrade.Progress
		rep, err := h.Upgrade(ctx, "calc", "v2", upgrade.WithStrategy(upgrade.Shadow(upgrade.ShadowWindow(10*time.Second))),
			upgrade.WithProgress(func(p upgrade.Progress) {
				lines = append(lines, p)
				if p.Phase == "shadowed" {
					go func() { // events flow during the window
						for _, r := range refs {
							session(t, r)
						}
					}()
				}
			}))
		require.NoError(t, err)
		require.NotNil(t, rep.Shadow)
		require.False(t, rep.Shadow.Active)
		require.Equal(t, int64(2), rep.Shadow.Diverged)
		require.Len(t, lines, 1+9+1, "shadowed, nine ticks, the end")
		last := lines[len(lines)-1]
		require.Equal(t, "shadow", last.Phase)
		require.Equal(t, "ended: 2 of 12 mirrored events diverged", last.Detail)
		require.Len(t, last.Shadow.Samples, 2)
	})
}

// Each selector kind picks the machines shadowed.
func TestShadowSelectors(t *testing.T) {
	for _, tc := range []struct {
		name string
		sel  upgrade.Selector
		n    int
	}{
		{"all", upgrade.Selector{}, 4},
		{"ids", upgrade.Selector{IDs: []string{"a"}}, 1},
		{"tags", upgrade.Selector{Tags: map[string]string{"cohort": "beta"}}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			h := newCalc(t)
			refs := startCalc(t, h, []string{"a", "b", "c", "d"}, "b", "c")
			rep, err := h.Upgrade(ctx, "calc", "v2", upgrade.WithStrategy(upgrade.Shadow()), upgrade.WithSelector(tc.sel))
			require.NoError(t, err)
			require.Equal(t, tc.n, rep.Changed)
			for _, r := range refs {
				session(t, r)
			}
			sr, err := h.ShadowReport("calc")
			require.NoError(t, err)
			require.Equal(t, int64(tc.n*6), sr.Mirrored)
			require.Equal(t, int64(tc.n), sr.Diverged)
		})
	}
}
