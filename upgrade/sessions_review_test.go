package upgrade_test

import (
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/upgrade"
)

// TestNewSessionsRollbackEndsIt: a rollback during a new-sessions rollout
// (share below 100) undoes that rollout, the last change made: the share
// ends, the sessions started on the new version move back to the current
// one, new sessions start there, and the new version is unloaded. The
// version before the current one is left alone. Before, with no earlier
// upgrade the rollback was refused (ErrNothingToRollBack) while new
// sessions went on starting on v2; after one, it moved every machine to
// the version before that (v1), leaving the current v2 as well.
func TestNewSessionsRollbackEndsIt(t *testing.T) {
	ids := func(prefix string) []string {
		out := make([]string, 40)
		for i := range out {
			out[i] = fmt.Sprintf("%s%d", prefix, i)
		}
		return out
	}
	tests := []struct {
		name        string
		current, to string // the current version, and the one of the share
	}{
		{"first upgrade", "v1", "v2"},
		{"after an upgrade", "v2", "v3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := t.Context()
				h := newCalc(t)
				if tt.current != "v1" {
					_, err := h.Upgrade(ctx, "calc", tt.current)
					require.NoError(t, err)
					require.NoError(t, h.Confirm(ctx, "calc"))
				}
				old := startCalc(t, h, ids("o"))
				_, err := h.Upgrade(ctx, "calc", tt.to, upgrade.WithStrategy(upgrade.NewSessions(50)))
				require.NoError(t, err)
				sessions := startCalc(t, h, ids("s"))
				synctest.Wait()
				require.Positive(t, counts(calcStatus(t, h))[tt.to], "some sessions started on %s", tt.to)

				rep, err := h.Rollback(ctx, "calc")
				require.NoError(t, err)
				require.Equal(t, "ok", rep.Result)
				require.Equal(t, tt.current, rep.To)
				synctest.Wait()
				st := calcStatus(t, h)
				require.Nil(t, st.Sessions, "the rollout ended")
				require.Equal(t, tt.current, st.Current)
				require.Equal(t, tt.current, st.Permanent)
				require.Equal(t, map[string]int{tt.current: 80}, counts(st))
				require.Equal(t, []string{tt.current}, loaded(st))
				for _, r := range sessions {
					require.Equal(t, tt.current, version(t, r))
				}
				more := startCalc(t, h, ids("n"))
				for _, r := range more {
					require.Equal(t, tt.current, version(t, r), "new sessions start on the current version")
				}
				stopAll(t, old)
				stopAll(t, sessions)
				stopAll(t, more)
			})
		})
	}
}

// TestNewSessionsCountsOnlyStartedMachines: Status's started_old and
// started_new count the machines that started on each side; a start that
// fails (here: a name already taken) is not one. Before, the count was
// taken before the machine started, and a failed start was counted.
func TestNewSessionsCountsOnlyStartedMachines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		h := newCalc(t)
		_, err := h.Upgrade(ctx, "calc", "v2", upgrade.WithStrategy(upgrade.NewSessions(50)))
		require.NoError(t, err)
		named := fsm.WithSpawnOptions(actor.WithName("the-one"))
		ref, err := h.Start(ctx, "calc", fsm.WithID("a"), named)
		require.NoError(t, err)
		side := version(t, ref)
		for i := range 10 {
			_, err := h.Start(ctx, "calc", fsm.WithID(fmt.Sprintf("b%d", i)), named)
			require.Error(t, err, "the name is taken")
		}
		st := calcStatus(t, h).Sessions
		require.NotNil(t, st)
		want := upgrade.SessionsStatus{To: "v2", Share: 50, StartedOld: 1}
		if side == "v2" {
			want.StartedOld, want.StartedNew = 0, 1
		}
		require.Equal(t, want, *st)
		require.NoError(t, actor.Stop(ctx, ref, actor.Normal))
	})
}
