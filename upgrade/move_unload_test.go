package upgrade_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/upgrade"
)

// closableCode is a version whose code stops working once closed, as a
// plugin's does when its process is stopped.
type closableCode struct {
	fsm.Code
	closed *atomic.Bool
}

var errCodeClosed = errors.New("code closed")

func (c closableCode) Close() error { c.closed.Store(true); return nil }

func (c closableCode) Upgrade(ctx context.Context, from, state string, data []byte) (fsm.Instance, error) {
	if c.closed.Load() {
		return nil, errCodeClosed
	}
	return c.Code.Upgrade(ctx, from, state, data)
}

// A machine that ends while a move runs makes the handler unload the
// versions nothing needs; the versions the move has loaded (its target,
// before any machine counts on it) must not be among them, or the move
// fails on code that was closed under it (the soak saw upgrades fail with
// "plugin phone-v2: closed" when a phone hung up mid-upgrade).
func TestMoveKeepsItsVersionsLoaded(t *testing.T) {
	sys := actor.NewSystem(actor.WithLogger(quiet()))
	h, err := upgrade.NewReleaseHandler(sys, upgrade.WithReleaseLogger(quiet()))
	require.NoError(t, err)
	defer func() {
		require.NoError(t, h.Close(context.Background()))
		require.NoError(t, sys.Shutdown(context.Background()))
	}()
	require.NoError(t, h.Register(calc("v1")))
	var closed atomic.Bool
	require.NoError(t, h.RegisterSource("calc", "v2", func(context.Context) (fsm.Code, error) {
		closed.Store(false)
		return closableCode{Code: calc("v2"), closed: &closed}, nil
	}))
	refs := startCalc(t, h, []string{"m0", "m1", "m2"})
	machinesOn := func(v string) int {
		for _, ms := range h.Status() {
			for _, vs := range ms.Versions {
				if vs.Version == v {
					return vs.Machines
				}
			}
		}
		return -1
	}
	rep, err := h.Upgrade(t.Context(), "calc", "v2",
		upgrade.WithSelector(upgrade.Selector{IDs: []string{"m1", "m2"}}),
		upgrade.WithProgress(func(p upgrade.Progress) {
			if p.Phase == "suspended" { // v2 is loaded; no machine runs it yet
				require.NoError(t, actor.Stop(context.Background(), refs["m0"], actor.Normal))
				require.Eventually(t, func() bool { return machinesOn("v1") == 2 }, relWait, relTick,
					"the handler has seen m0's exit")
			}
		}))
	require.NoError(t, err, rep.Error)
	require.False(t, closed.Load(), "v2 was unloaded under the move")
	require.Equal(t, "v2", version(t, refs["m1"]))
	require.Equal(t, "v2", version(t, refs["m2"]))
}
