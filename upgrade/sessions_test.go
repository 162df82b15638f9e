package upgrade_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/upgrade"
)

func version(t testing.TB, ref actor.Ref) string {
	t.Helper()
	inf, err := fsm.Inspect(context.Background(), ref)
	require.NoError(t, err)
	return inf.Version
}

func stopAll(t testing.TB, refs map[string]actor.Ref) {
	t.Helper()
	for _, r := range refs {
		require.NoError(t, actor.Stop(context.Background(), r, actor.Normal))
	}
}

// New sessions: the running machines stay on v1 and drain; new ones start
// on v2 at the share, which rises to 100%; v1 is unloaded when its last
// machine ends.
func TestNewSessionsShareRisesTo100(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		h := newCalc(t)
		old := startCalc(t, h, []string{"o0", "o1", "o2"})
		ids := make([]string, 100)
		for i := range ids {
			ids[i] = fmt.Sprintf("u%d", i)
		}
		// onV2 starts a session per ID and returns those on v2, then ends them.
		onV2 := func() map[string]bool {
			refs := startCalc(t, h, ids)
			out := map[string]bool{}
			for id, r := range refs {
				if version(t, r) == "v2" {
					out[id] = true
				}
			}
			stopAll(t, refs)
			return out
		}
		var prev map[string]bool
		for _, share := range []float64{0, 20, 60, 100} {
			var shares []float64
			rep, err := h.Upgrade(ctx, "calc", "v2", upgrade.WithStrategy(upgrade.NewSessions(share)),
				upgrade.WithProgress(func(p upgrade.Progress) { shares = append(shares, p.Share) }))
			require.NoError(t, err)
			require.Equal(t, "ok", rep.Result)
			require.Equal(t, share, *rep.Share)
			require.Equal(t, []float64{share}, shares, "one progress line with the share")
			require.Equal(t, 0, rep.Changed, "no machine moves")

			got := onV2()
			switch share {
			case 0:
				require.Empty(t, got)
			case 100:
				require.Len(t, got, len(ids))
			default:
				n := float64(len(got))
				require.InDelta(t, share, n, 15, "about share%% of 100 sessions")
			}
			for id := range prev {
				require.True(t, got[id], "raising the share moves no ID back: %s", id)
			}
			prev = got
			st := calcStatus(t, h)
			require.NotNil(t, st.Sessions)
			require.Equal(t, share, st.Sessions.Share)
			for _, r := range old {
				require.Equal(t, "v1", version(t, r), "running machines stay")
			}
		}
		st := calcStatus(t, h)
		require.Equal(t, "v2", st.Current, "at 100% the new version is current")
		require.Equal(t, "v1", st.Permanent)
		require.Equal(t, 400, st.Sessions.StartedNew+st.Sessions.StartedOld, "four rounds of 100")
		require.Equal(t, []string{"v1", "v2"}, loaded(st))
		require.NoError(t, h.Confirm(ctx, "calc"))
		synctest.Wait()
		st = calcStatus(t, h)
		require.Equal(t, map[string]int{"v1": 3}, counts(st))
		require.Contains(t, loaded(st), "v1", "loaded while its machines run")

		// The old sessions end: the last one unloads v1.
		stopAll(t, old)
		synctest.Wait()
		st = calcStatus(t, h)
		require.Equal(t, []string{"v2"}, loaded(st))
		require.Empty(t, counts(st))
	})
}

// Machines started without an ID are counted: share of every 100.
func TestNewSessionsWithoutIDs(t *testing.T) {
	ctx := context.Background()
	h := newCalc(t)
	_, err := h.Upgrade(ctx, "calc", "v2", upgrade.WithStrategy(upgrade.NewSessions(25)))
	require.NoError(t, err)
	n := 0
	for range 8 {
		ref, err := h.Start(ctx, "calc")
		require.NoError(t, err)
		if version(t, ref) == "v2" {
			n++
		}
	}
	require.Equal(t, 2, n)
	st := calcStatus(t, h)
	require.Equal(t, 2, st.Sessions.StartedNew)
	require.Equal(t, 6, st.Sessions.StartedOld)
	require.Equal(t, map[string]int{"v1": 6, "v2": 2}, counts(st))
}

// The selector picks which new machines may start on the new version; the
// current version stays as it was.
func TestNewSessionsSelectors(t *testing.T) {
	for _, tc := range []struct {
		name string
		sel  upgrade.Selector
		want map[string]string
	}{
		{"ids", upgrade.Selector{IDs: []string{"a", "c"}}, map[string]string{"a": "v2", "b": "v1", "c": "v2", "d": "v1"}},
		{"tags", upgrade.Selector{Tags: map[string]string{"cohort": "beta"}}, map[string]string{"a": "v1", "b": "v2", "c": "v1", "d": "v2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			h := newCalc(t)
			_, err := h.Upgrade(ctx, "calc", "v2", upgrade.WithStrategy(upgrade.NewSessions(100)), upgrade.WithSelector(tc.sel))
			require.NoError(t, err)
			refs := startCalc(t, h, []string{"a", "b", "c", "d"}, "b", "d")
			for id, want := range tc.want {
				require.Equal(t, want, version(t, refs[id]), id)
			}
			st := calcStatus(t, h)
			require.Equal(t, "v1", st.Current, "only the zero selector makes v2 current")
			require.Equal(t, tc.sel, st.Sessions.Selector)
		})
	}
}

func TestNewSessionsRefusesRollbackAndUnknownVersion(t *testing.T) {
	ctx := context.Background()
	h := newCalc(t)
	_, err := h.Upgrade(ctx, "calc", "v9", upgrade.WithStrategy(upgrade.NewSessions(10)))
	require.ErrorIs(t, err, upgrade.ErrUnknownVersion)
	require.Nil(t, calcStatus(t, h).Sessions, "nothing set")

	// An upgrade of every machine ends a new-sessions rollout.
	_, err = h.Upgrade(ctx, "calc", "v2", upgrade.WithStrategy(upgrade.NewSessions(50)))
	require.NoError(t, err)
	_, err = h.Upgrade(ctx, "calc", "v3")
	require.NoError(t, err)
	require.Nil(t, calcStatus(t, h).Sessions)
}
