package upgrade_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/upgrade"
)

func TestStrategySpec(t *testing.T) {
	for _, tc := range []struct {
		spec upgrade.StrategySpec
		want string // the strategy's String, or the error's text
		bad  bool
	}{
		{upgrade.StrategySpec{}, "all-at-once", false},
		{upgrade.StrategySpec{Name: "all"}, "all-at-once", false},
		{upgrade.StrategySpec{Name: "rolling", Batch: 64}, "rolling(64)", false},
		{upgrade.StrategySpec{Name: "rolling"}, "rolling(1)", false},
		{upgrade.StrategySpec{Name: "canary", Canary: 2, Window: "30s"}, "canary(then all-at-once)", false},
		{upgrade.StrategySpec{Name: "canary", Percent: 5}, "canary(then all-at-once)", false},
		{upgrade.StrategySpec{Name: "new-sessions", Share: 12.5}, "new-sessions(12.5%)", false},
		{upgrade.StrategySpec{Name: "new-sessions"}, "new-sessions(0%)", false},
		{upgrade.StrategySpec{Name: "shadow"}, "shadow", false},
		{upgrade.StrategySpec{Name: "shadow", Window: "1m"}, "shadow", false},

		{upgrade.StrategySpec{Name: "blue-green"}, `unknown name "blue-green"`, true},
		{upgrade.StrategySpec{Name: "rolling", Batch: -1}, "batch -1 is negative", true},
		{upgrade.StrategySpec{Name: "rolling", Share: 5}, "rolling takes no share", true},
		{upgrade.StrategySpec{Batch: 5}, "all takes no batch", true},
		{upgrade.StrategySpec{Name: "canary", Canary: 2, Percent: 5}, "not both", true},
		{upgrade.StrategySpec{Name: "canary", Percent: 150}, "percent 150 is not in (0, 100]", true},
		{upgrade.StrategySpec{Name: "canary", Window: "soon"}, `window "soon" is not a positive duration`, true},
		{upgrade.StrategySpec{Name: "canary", Window: "-1s"}, `window "-1s" is not a positive duration`, true},
		{upgrade.StrategySpec{Name: "new-sessions", Share: 101}, "share 101 is not in [0, 100]", true},
		{upgrade.StrategySpec{Name: "shadow", Canary: 1}, "shadow takes no canary", true},
	} {
		s, err := tc.spec.Strategy()
		if tc.bad {
			require.ErrorIs(t, err, upgrade.ErrBadStrategy, "%+v", tc.spec)
			require.ErrorContains(t, err, tc.want)
			continue
		}
		require.NoError(t, err, "%+v", tc.spec)
		require.Equal(t, tc.want, s.String())
	}
}

// The admin API takes a strategy, streams its progress and decisions,
// and reports the share and the shadow.
func TestAdminStrategies(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	h := newCalc(t)
	refs := startCalc(t, h, []string{"a", "b", "c", "d", "e"}, "b")
	dir, err := os.MkdirTemp("", "hlstrat")
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, os.RemoveAll(dir)) })
	path := filepath.Join(dir, "admin.sock")
	served := make(chan error, 1)
	go func() { served <- h.ServeAdmin(ctx, path) }()
	defer func() {
		cancel()
		require.NoError(t, <-served)
	}()
	var c *upgrade.AdminClient
	require.Eventually(t, func() bool {
		c, err = upgrade.DialAdmin(ctx, path)
		return err == nil
	}, relWait, relTick)

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
	require.ErrorContains(t, err, "bad strategy: rolling: batch -2 is negative")
	_, err = c.Do(ctx, upgrade.AdminRequest{Op: "confirm", Machine: "calc", Strategy: &upgrade.StrategySpec{}}, nil)
	require.ErrorContains(t, err, "confirm takes no strategy")
	_, err = c.ShadowReport(ctx, "nope")
	require.ErrorContains(t, err, "unknown machine")
}
