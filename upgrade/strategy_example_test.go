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
