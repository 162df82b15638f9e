package upgrade_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/upgrade"
)

// A machine that an operator holds suspended is moved by a rollout like
// the others, and is still suspended after it: the rollout's own
// suspensions (the cut's, or a rolling window's two) end only themselves.
// Before suspensions were counted (actor.Suspend), the rollout's Resume
// let it run.
func TestRolloutsLeaveAHeldMachineSuspended(t *testing.T) {
	for _, tc := range []struct {
		name  string
		strat upgrade.Strategy
	}{
		{"all at once", upgrade.AllAtOnce()},
		{"rolling", upgrade.Rolling(2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			_, h := newRelease(t)
			refs := startN(t, h, 4)
			held := refs[1]
			require.NoError(t, actor.Suspend(ctx, held)) // the operator's
			require.NoError(t, fsm.Cast(held, Inc{}))

			rep, err := h.Upgrade(ctx, "counter", "v2", upgrade.WithStrategy(tc.strat))
			require.NoError(t, err)
			require.Equal(t, 4, rep.Changed)
			q, err := actor.QueuedMessages(ctx, held)
			require.NoError(t, err, "the rollout ended the operator's suspension")
			require.Len(t, q, 1, "the held machine handled its event")

			require.NoError(t, actor.Resume(ctx, held)) // the operator lets go
			inf := infos(t, []actor.Ref{held})[0]
			require.Equal(t, "v2", inf.Version)
			var d CountV2
			require.NoError(t, msgpack.Unmarshal(inf.Data, &d))
			require.Equal(t, 1, d.N, "the event queued while held went to v2")
		})
	}
}
