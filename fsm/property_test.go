package fsm_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hotline-go/hotline/actor/actortest"
	"github.com/hotline-go/hotline/fsm"
	"github.com/stretchr/testify/require"
)

// A step of a random run: an event, or time passing.
type runStep struct {
	ev    any
	sleep time.Duration
}

func randomRun(r *rand.Rand, n int) []runStep {
	steps := make([]runStep, n)
	for i := range steps {
		switch x := r.IntN(20); {
		case x < 7:
			steps[i].ev = KeyPressed{Digit: r.IntN(10)}
		case x < 10:
			steps[i].ev = AudioReceived{Bytes: 1 + r.IntN(100)}
		case x < 12:
			steps[i].ev = AudioSent{Bytes: 1 + r.IntN(100)}
		case x < 15:
			steps[i].ev = Answered{}
		case x < 16:
			steps[i].ev = Hangup{}
		default:
			// Around the phone's timeouts: 1s, 10s, 30s.
			steps[i].sleep = []time.Duration{0, 500 * time.Millisecond, time.Second, 5 * time.Second, 10 * time.Second, 20 * time.Second}[r.IntN(6)]
		}
	}
	return steps
}

// TestUpgradeCommutes: a random run of events on phone v1, with a change
// of code to v2 at a random point (while the events before it may still
// wait in the mailbox, postponed, or in timeouts), ends with the same state
// and data as the same run on a machine that was on v2 from the start,
// from v1's initial data migrated by UPGRADE.
func TestUpgradeCommutes(t *testing.T) {
	const runs, steps = 200, 60
	v1, v2 := phoneV1(), phoneV2()
	initial, err := v1.Snapshot("off", PhoneV1{})
	require.NoError(t, err)
	for seed := range uint64(runs) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 0x5eed))
			run := randomRun(r, steps)
			at := r.IntN(len(run) + 1)
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				sys := actortest.NewSystem(t)
				changed := start(t, sys, v1)
				native := start(t, sys, v2, fsm.FromSnapshot(initial))
				for i, s := range run {
					if i == at {
						// No Sync first: events still queued go to v2.
						require.NoError(t, fsm.ChangeCode(ctx, changed, v2))
					}
					if s.ev != nil {
						cast(t, changed, s.ev)
						cast(t, native, s.ev)
						continue
					}
					time.Sleep(s.sleep)
					synctest.Wait()
				}
				if at == len(run) {
					require.NoError(t, fsm.ChangeCode(ctx, changed, v2))
				}
				a, b := info(t, changed), info(t, native)
				require.Equal(t, "v2", a.Version)
				require.Equal(t, b.State, a.State)
				require.Equal(t, b.Postponed, a.Postponed)
				require.Equal(t, b.Timeouts, a.Timeouts)
				require.Equal(t, b.Data, a.Data, "v2 data: %+v vs %+v", data[PhoneV2](t, changed), data[PhoneV2](t, native))
			})
		})
	}
}
