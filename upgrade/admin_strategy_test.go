package upgrade_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/upgrade"
)

// The admin API takes a strategy, streams its progress and decisions,
// and reports the share and the shadow.
func TestAdminStrategies(t *testing.T) {
	h := newCalc(t)
	refs := startCalc(t, h, []string{"a", "b", "c", "d", "e"}, "b")
	ctx, c, _ := serveAdmin(t, h)

	// Shadow first (nothing moves), with its report through the API.
	rep, err := c.UpgradeWith(ctx, upgrade.AdminRequest{Machine: "calc", To: "v2", Strategy: &upgrade.StrategySpec{Name: "shadow"}}, nil)
	require.NoError(t, err)
	require.Equal(t, 5, rep.Changed)
	for _, r := range refs {
		session(t, r)
	}
	sr, err := c.ShadowReport(ctx, "calc")
	require.NoError(t, err)
	require.Equal(t, int64(5), sr.Diverged)
	require.Len(t, sr.Samples, 5)
	st, err := c.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(5), st[0].Shadow.Diverged)
	sr, err = c.EndShadow(ctx, "calc")
	require.NoError(t, err)
	require.False(t, sr.Active)

	// Rolling, selected by tag: batch n of m.
	var lines []upgrade.Progress
	rep, err = c.UpgradeWith(ctx, upgrade.AdminRequest{Machine: "calc", To: "v2", Who: "carol",
		Selector: upgrade.Selector{Tags: map[string]string{"cohort": "users"}},
		Strategy: &upgrade.StrategySpec{Name: "rolling", Batch: 2}}, func(p upgrade.Progress) { lines = append(lines, p) })
	require.NoError(t, err)
	require.Equal(t, "rolling(2)", rep.Strategy)
	require.Equal(t, 4, rep.Changed)
	require.Len(t, lines, 2)
	require.Equal(t, upgrade.Progress{Phase: "batch", Done: 4, Total: 4, Batch: 2, Batches: 2,
		Detail: "batch 2 of 2: 4 of 4 machines moved"}, lines[1])

	// New sessions for the rest: the share in the report and the status.
	lines = nil
	rep, err = c.UpgradeWith(ctx, upgrade.AdminRequest{Machine: "calc", To: "v2",
		Strategy: &upgrade.StrategySpec{Name: "new-sessions", Share: 30}}, func(p upgrade.Progress) { lines = append(lines, p) })
	require.NoError(t, err)
	require.Equal(t, 30.0, *rep.Share)
	require.Equal(t, "share", lines[0].Phase)
	require.Equal(t, "new machines start on v2 at 30%", lines[0].Detail)
	st, err = c.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, 30.0, st[0].Sessions.Share)

	// A bad strategy is refused before anything happens.
	_, err = c.UpgradeWith(ctx, upgrade.AdminRequest{Machine: "calc", To: "v2", Strategy: &upgrade.StrategySpec{Name: "rolling", Batch: -2}}, nil)
	require.ErrorContains(t, err, `strategy "rolling": batch -2`)
	_, err = c.Do(ctx, upgrade.AdminRequest{Op: "confirm", Machine: "calc", Strategy: &upgrade.StrategySpec{}}, nil)
	require.ErrorContains(t, err, "confirm takes no strategy")
	_, err = c.ShadowReport(ctx, "nope")
	require.ErrorContains(t, err, "unknown machine")
}
