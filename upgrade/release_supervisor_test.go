package upgrade_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/supervisor"
	"github.com/hotline-go/hotline/upgrade"
)

// TestSupervisedMachines: the handler's Start as a child spec's Start. A
// migrated child keeps its Ref; under PolicyRestart the supervisor starts
// the child again, through the handler, on the new version.
func TestSupervisedMachines(t *testing.T) {
	tests := []struct {
		policy  upgrade.Policy
		sameRef bool
	}{
		{upgrade.PolicyMigrate, true},
		{upgrade.PolicyRestart, false},
	}
	for _, tt := range tests {
		t.Run(tt.policy.String(), func(t *testing.T) {
			ctx := context.Background()
			sys, h := newRelease(t, upgrade.WithPolicy("counter", tt.policy))
			spec := supervisor.ChildSpec{ID: "c1", Start: func(sc supervisor.StartContext) (actor.Ref, error) {
				return h.Start(ctx, "counter", fsm.WithID("c1"), fsm.WithSpawnOptions(actor.LinkTo(sc.Supervisor())))
			}}
			sup, err := supervisor.Start(sys, supervisor.OneForOne, []supervisor.ChildSpec{spec})
			require.NoError(t, err)
			before := child(t, sup)

			_, err = h.Upgrade(ctx, "counter", "v2")
			require.NoError(t, err)

			var after actor.Ref
			require.Eventually(t, func() bool {
				after = child(t, sup)
				return !after.IsZero() && (after == before) == tt.sameRef
			}, relWait, relTick)
			require.Equal(t, "v2", infos(t, []actor.Ref{after})[0].Version)
			require.Eventually(t, func() bool {
				return counts(status(t, h))["v2"] == 1 && len(counts(status(t, h))) == 1
			}, relWait, relTick)
			require.NoError(t, actor.Stop(ctx, sup, nil))
		})
	}
}

func child(t *testing.T, sup actor.Ref) actor.Ref {
	t.Helper()
	cs, err := supervisor.WhichChildren(context.Background(), sup)
	require.NoError(t, err)
	require.Len(t, cs, 1)
	return cs[0].Ref
}
