package upgrade_test

import (
	"context"
	"fmt"
	"time"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/upgrade"
)

// sessions starts a handler with session v1 and v2 registered and n
// sessions running; stop shuts it all down.
func sessions(ctx context.Context, n int) (h *upgrade.ReleaseHandler, stop func(), err error) {
	sys := actor.NewSystem(actor.WithLogger(quiet()))
	stop = func() {
		if h != nil {
			if err := h.Close(ctx); err != nil {
				fmt.Println(err)
			}
		}
		if err := sys.Shutdown(ctx); err != nil {
			fmt.Println(err)
		}
	}
	h, err = upgrade.NewReleaseHandler(sys, upgrade.WithReleaseLogger(quiet()))
	if err != nil {
		return nil, stop, err
	}
	for _, c := range []fsm.Code{sessionV1(), sessionV2()} {
		if err := h.Register(c); err != nil {
			return h, stop, err
		}
	}
	for i := range n {
		if _, err := h.Start(ctx, "session", fsm.WithID(fmt.Sprintf("s%02d", i))); err != nil {
			return h, stop, err
		}
	}
	return h, stop, nil
}

// Upgrade ten sessions three at a time: at most three are suspended at
// any moment, each only for its own change.
func ExampleRolling() {
	ctx := context.Background()
	h, stop, err := sessions(ctx, 10)
	defer stop()
	if err != nil {
		fmt.Println(err)
		return
	}
	rep, err := h.Upgrade(ctx, "session", "v2",
		upgrade.WithStrategy(upgrade.Rolling(3)),
		upgrade.WithProgress(func(p upgrade.Progress) { fmt.Printf("%s %d/%d\n", p.Phase, p.Done, p.Total) }))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rep.Strategy, rep.Result, rep.Changed, "changed, at most 3 suspended:", rep.MaxSuspended <= 3)
	// Output:
	// batch 3/10
	// batch 6/10
	// batch 9/10
	// batch 10/10
	// rolling(3) ok 10 changed, at most 3 suspended: true
}

// Upgrade one canary session first, watch it, then the rest.
func ExampleCanary() {
	ctx := context.Background()
	h, stop, err := sessions(ctx, 5)
	defer stop()
	if err != nil {
		fmt.Println(err)
		return
	}
	healthy := func(ctx context.Context, canaries []actor.Ref) error {
		_, err := fsm.Call(ctx, canaries[0], Hits{})
		return err
	}
	rep, err := h.Upgrade(ctx, "session", "v2", upgrade.WithStrategy(upgrade.Canary(
		upgrade.CanaryWindow(10*time.Millisecond), upgrade.CanaryHealth(healthy))))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rep.Verdict, "-", rep.Canaries, "canary,", rep.Changed, "changed")
	// Output:
	// promoted - 1 canary, 5 changed
}

// Send a share of the new sessions to v2; the running ones stay on v1.
func ExampleNewSessions() {
	ctx := context.Background()
	h, stop, err := sessions(ctx, 3)
	defer stop()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, share := range []float64{50, 100} {
		rep, err := h.Upgrade(ctx, "session", "v2", upgrade.WithStrategy(upgrade.NewSessions(share)))
		if err != nil {
			fmt.Println(err)
			return
		}
		ref, err := h.Start(ctx, "session", fsm.WithID(fmt.Sprintf("new-at-%g", share)))
		if err != nil {
			fmt.Println(err)
			return
		}
		inf, err := fsm.Inspect(ctx, ref)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s: %d moved, a new session on %s\n", rep.Strategy, rep.Changed, inf.Version)
	}
	st := h.Status()[0]
	fmt.Println("current", st.Current, "- machines on v1:", st.Versions[0].Machines)
	// Output:
	// new-sessions(50%): 0 moved, a new session on v1
	// new-sessions(100%): 0 moved, a new session on v2
	// current v2 - machines on v1: 4
}

// Mirror the sessions' events to v2, which answers Hits as v1 does: no
// divergence.
func ExampleShadow() {
	ctx := context.Background()
	h, stop, err := sessions(ctx, 2)
	defer stop()
	if err != nil {
		fmt.Println(err)
		return
	}
	rep, err := h.Upgrade(ctx, "session", "v2", upgrade.WithStrategy(upgrade.Shadow()))
	if err != nil {
		fmt.Println(err)
		return
	}
	ref, err := h.Start(ctx, "session", fsm.WithID("s99"))
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := fsm.Cast(ref, Touch{}); err != nil {
		fmt.Println(err)
		return
	}
	hits, err := fsm.Call(ctx, ref, Hits{})
	if err != nil {
		fmt.Println(err)
		return
	}
	sr, err := h.EndShadow(ctx, "session")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rep.Changed, "shadowed; hits", hits)
	fmt.Printf("machines %d, mirrored %d, diverged %d\n", sr.Machines, sr.Mirrored, sr.Diverged)
	// Output:
	// 2 shadowed; hits 1
	// machines 3, mirrored 2, diverged 0
}

// Turn the admin API's strategy object into a Strategy.
func ExampleStrategySpec_Strategy() {
	for _, spec := range []upgrade.StrategySpec{
		{Name: "rolling", Batch: 256},
		{Name: "new-sessions", Share: 10},
		{Name: "canary", Canary: 2, Percent: 5},
	} {
		s, err := spec.Strategy()
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(s)
	}
	// Output:
	// rolling(256)
	// new-sessions(10%)
	// upgrade: bad admin request: strategy "canary": give a canary count or a percent, not both
}
