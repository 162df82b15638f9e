package upgrade_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/flags"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/upgrade"
)

// flagGate returns a version of a machine whose reply to Gate is whether
// the flag is on for it, the same in every version.
func flagGate(version string) *fsm.Machine[int] {
	m := fsm.Define("flaggate", version, "idle", 0)
	fsm.OnAnyFlags(m, func(g Gate, n int, f fsm.Flags) fsm.Result[int] {
		return fsm.Keep(n+1, fsm.Reply(f.On(g.Flag)))
	})
	return m
}

// The shadow instance reads the live machine's flags, bound to the same
// machine ID (so the same bucket of a percentage): a handler whose reply
// depends on a flag does not diverge. At 100% every machine reads the
// flag on, in both versions; at 50%, half of them, the same half.
func TestShadowReadsTheMachinesFlags(t *testing.T) {
	for _, pct := range []int{100, 50} {
		t.Run(fmt.Sprint(pct, "%"), func(t *testing.T) {
			ctx := t.Context()
			fl := flags.New(flags.WithLogger(quiet()))
			_, err := fl.Set("fast-dial", flags.Percent(pct), "test")
			require.NoError(t, err)
			_, h := newRelease(t, upgrade.WithFlags(fl))
			require.NoError(t, h.Register(flagGate("v1")))
			require.NoError(t, h.Register(flagGate("v2")))
			ids := make([]string, 20)
			for i := range ids {
				ids[i] = fmt.Sprintf("555-%04d", i)
			}
			refs := map[string]actor.Ref{}
			start := func(id string) {
				t.Helper()
				ref, err := h.Start(ctx, "flaggate", fsm.WithID(id))
				require.NoError(t, err)
				refs[id] = ref
			}
			ask := func(id string) bool {
				t.Helper()
				v, err := fsm.Call(ctx, refs[id], Gate{"fast-dial"})
				require.NoError(t, err)
				return v.(bool)
			}
			for _, id := range ids[:10] {
				start(id)
			}
			_, err = h.Upgrade(ctx, "flaggate", "v2", upgrade.WithStrategy(upgrade.Shadow()))
			require.NoError(t, err)
			for _, id := range ids[10:] { // started while the shadow runs
				start(id)
			}
			on := 0
			for _, id := range ids {
				got := ask(id)
				require.Equal(t, fl.Enabled("fast-dial", id), got, "the live machine %s reads its flag", id)
				if got {
					on++
				}
			}
			if pct == 100 {
				require.Equal(t, len(ids), on)
			} else {
				require.NotZero(t, on, "some machines have the flag")
				require.NotEqual(t, len(ids), on, "some do not")
			}
			sr, err := h.ShadowReport("flaggate")
			require.NoError(t, err)
			require.Equal(t, int64(len(ids)), sr.Mirrored)
			require.Zero(t, sr.Failed)
			require.Zero(t, sr.Diverged, "diverged by event: %v", sr.ByEvent)
		})
	}
}
