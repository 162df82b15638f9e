package upgrade_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/upgrade"
)

// gated is calc v1 whose start (its state enter handler) signals entered
// and then waits for open to close, so that a test can hold a Start
// under way.
func gated(entered chan<- struct{}, open <-chan struct{}) *fsm.Machine[CalcData] {
	m := calc("v1")
	m.Enter("on", func(_ string, d CalcData) fsm.Result[CalcData] {
		entered <- struct{}{}
		<-open
		return fsm.Keep(d)
	})
	return m
}

// A machine whose Start is under way when a canary upgrade picks its
// canaries is picked: the pick waits for starts as the cut does, so the
// canary never promotes with zero canaries while machines run.
func TestCanaryPicksMachineStarting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := actor.NewSystem(actor.WithLogger(quiet()))
		h, err := upgrade.NewReleaseHandler(sys, upgrade.WithReleaseLogger(quiet()))
		require.NoError(t, err)
		t.Cleanup(func() {
			require.NoError(t, h.Close(context.Background()))
			require.NoError(t, sys.Shutdown(context.Background()))
		})
		entered, open := make(chan struct{}), make(chan struct{})
		require.NoError(t, h.Register(gated(entered, open)))
		require.NoError(t, h.Register(calc("v2")))

		started := make(chan actor.Ref, 1)
		go func() {
			ref, err := h.Start(context.Background(), "calc", fsm.WithID("p0"))
			if err != nil {
				ref = actor.Ref{}
			}
			started <- ref
		}()
		<-entered // p0 runs, untracked until its Start returns

		rep, err := h.Upgrade(t.Context(), "calc", "v2", upgrade.WithStrategy(upgrade.Canary(
			upgrade.CanaryWindow(time.Second),
			upgrade.CanaryOnPick(func() { close(open) }), // the start ends only now
		)))
		require.NoError(t, err)
		require.Equal(t, 1, rep.Canaries, rep.Reason)
		require.Equal(t, "promoted", rep.Verdict)
		require.Equal(t, "1 canaries healthy for 1s (0 error replies of 0)", rep.Reason)
		ref := <-started
		require.NotEqual(t, actor.Ref{}, ref)
		require.Equal(t, "v2", version(t, ref))
	})
}

// With no machine to watch the canary says so and promotes at once: no
// window is waited for, and the name's current version moves.
func TestCanaryNoMachines(t *testing.T) {
	tests := []struct {
		name     string
		start    []string // machines running v1
		selector upgrade.Selector
		current  string // after the upgrade
		reason   string
	}{
		{name: "none running", current: "v2",
			reason: "no machines to watch (0 selected machines, none on another version than v2)"},
		{name: "none selected", start: []string{"m0", "m1"}, selector: upgrade.Selector{IDs: []string{"m9"}}, current: "v1",
			reason: "no machines to watch (0 selected machines, none on another version than v2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newCalc(t)
				refs := startCalc(t, h, tt.start)
				var verdict upgrade.Progress
				t0 := time.Now()
				rep, err := h.Upgrade(t.Context(), "calc", "v2", upgrade.WithSelector(tt.selector),
					upgrade.WithStrategy(upgrade.Canary(upgrade.CanaryWindow(time.Minute))),
					upgrade.WithProgress(func(p upgrade.Progress) {
						if p.Phase == "verdict" {
							verdict = p
						}
					}))
				require.NoError(t, err)
				require.Zero(t, time.Since(t0), "no window to wait for")
				require.Equal(t, 0, rep.Canaries)
				require.Equal(t, "promoted", rep.Verdict)
				require.Equal(t, tt.reason, rep.Reason)
				require.Equal(t, "promoted: "+tt.reason, verdict.Detail)
				require.Equal(t, tt.current, calcStatus(t, h).Current)
				for _, r := range refs {
					require.Equal(t, "v1", version(t, r))
				}
			})
		})
	}
}

// A canary that exits at once after its move is judged by its own exit
// reason: a normal exit (a phone that hangs up) is no failure, any other
// fails the canaries with that reason.
func TestCanaryExitJustAfterMove(t *testing.T) {
	errCrash := errors.New("crashed on v2")
	tests := []struct {
		name    string
		reason  error
		verdict string
	}{
		{name: "normal", reason: actor.Normal, verdict: "promoted"},
		{name: "crash", reason: errCrash, verdict: "rolled back"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newCalc(t)
				refs := startCalc(t, h, []string{"m0", "m1", "m2"})
				rep, err := h.Upgrade(t.Context(), "calc", "v2",
					upgrade.WithStrategy(upgrade.Canary(upgrade.CanaryWindow(time.Second))),
					upgrade.WithProgress(func(p upgrade.Progress) {
						if p.Phase == "canaries" { // m0 has moved; it ends before the window starts
							require.NoError(t, actor.Stop(context.Background(), refs["m0"], tt.reason))
						}
					}))
				require.Equal(t, 1, rep.Canaries)
				require.Equal(t, tt.verdict, rep.Verdict, rep.Reason)
				if tt.verdict == "promoted" {
					require.NoError(t, err)
					require.Equal(t, "v2", version(t, refs["m1"]))
					return
				}
				require.ErrorIs(t, err, upgrade.ErrCanaryFailed)
				require.Contains(t, rep.Reason, "exited: "+errCrash.Error())
				require.Equal(t, "v1", version(t, refs["m1"]))
			})
		})
	}
}
