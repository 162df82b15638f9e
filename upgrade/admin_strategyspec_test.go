package upgrade_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/upgrade"
)

func TestStrategySpec(t *testing.T) {
	tests := []struct {
		spec upgrade.StrategySpec
		want string // the strategy's String, or "" for an error
		err  string // in the error
	}{
		{spec: upgrade.StrategySpec{}, want: "all-at-once"},
		{spec: upgrade.StrategySpec{Name: "all"}, want: "all-at-once"},
		{spec: upgrade.StrategySpec{Name: "rolling", Batch: 5, Window: "10ms"}, want: "rolling(5)"},
		{spec: upgrade.StrategySpec{Name: "rolling"}, want: "rolling(1)"},
		{spec: upgrade.StrategySpec{Name: "canary", Canary: 3, Window: "2s"}, want: "canary(then all-at-once)"},
		{spec: upgrade.StrategySpec{Name: "canary", Percent: 10}, want: "canary(then all-at-once)"},
		{spec: upgrade.StrategySpec{Name: "new-sessions", Share: 0.1}, want: "new-sessions(0.1%)"},
		{spec: upgrade.StrategySpec{Name: "new-sessions"}, want: "new-sessions(0%)"},
		{spec: upgrade.StrategySpec{Name: "shadow"}, want: "shadow"},
		{spec: upgrade.StrategySpec{Name: "shadow", Window: "1m"}, want: "shadow"},
		{spec: upgrade.StrategySpec{Name: "new-sessions", Share: 101}, err: "share 101: want [0, 100]"},
		{spec: upgrade.StrategySpec{Name: "new-sessions", Window: "1s"}, err: "takes no window"},
		{spec: upgrade.StrategySpec{Name: "shadow", Canary: 1}, err: "takes no canary"},
		{spec: upgrade.StrategySpec{Name: "rolling", Share: 5}, err: "takes no share"},
		{spec: upgrade.StrategySpec{Name: "wild"}, err: `strategy "wild": unknown strategy`},
		{spec: upgrade.StrategySpec{Name: "canary", Window: "soon"}, err: `window "soon": want a duration`},
		{spec: upgrade.StrategySpec{Name: "canary", Window: "-1s"}, err: `window "-1s"`},
		{spec: upgrade.StrategySpec{Name: "canary", Canary: -1}, err: "canary -1"},
		{spec: upgrade.StrategySpec{Name: "canary", Percent: 101}, err: "percent 101"},
		{spec: upgrade.StrategySpec{Name: "canary", Canary: 2, Percent: 5}, err: "not both"},
		{spec: upgrade.StrategySpec{Name: "rolling", Batch: -2}, err: "batch -2"},
		{spec: upgrade.StrategySpec{Name: "rolling", Canary: 2}, err: "takes no canary"},
		{spec: upgrade.StrategySpec{Name: "all", Batch: 2}, err: "takes no batch"},
		{spec: upgrade.StrategySpec{Name: "all", Window: "1s"}, err: "takes no window"},
	}
	for _, tt := range tests {
		t.Run(tt.spec.Name+tt.want+tt.err, func(t *testing.T) {
			s, err := tt.spec.Strategy()
			if tt.err != "" {
				require.ErrorIs(t, err, upgrade.ErrBadRequest)
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, s.String())
		})
	}
}

// TestAdminStrategy: the admin server moves the machines by the request's
// strategy, and refuses a bad one before anything moves.
func TestAdminStrategy(t *testing.T) {
	_, h := newRelease(t)
	startN(t, h, 6)
	ctx, c, _ := serveAdmin(t, h)

	_, err := c.Do(ctx, upgrade.AdminRequest{Op: "upgrade", Machine: "counter", To: "v2",
		Strategy: &upgrade.StrategySpec{Name: "shadow", Batch: 3}}, nil)
	require.ErrorContains(t, err, `strategy "shadow": takes no batch`)
	_, err = c.Do(ctx, upgrade.AdminRequest{Op: "status", Strategy: &upgrade.StrategySpec{Name: "all"}}, nil)
	require.ErrorContains(t, err, "status takes no strategy")

	var batches int
	resp, err := c.Do(ctx, upgrade.AdminRequest{Op: "upgrade", Machine: "counter", To: "v2",
		Strategy: &upgrade.StrategySpec{Name: "rolling", Batch: 2}}, func(p upgrade.Progress) {
		if p.Phase == "batch" {
			batches++
		}
	})
	require.NoError(t, err)
	require.Equal(t, "rolling(2)", resp.Report.Strategy)
	require.Equal(t, 6, resp.Report.Changed)
	require.Equal(t, 3, batches)
}
