package upgrade_test

import (
	"context"
	"fmt"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/flags"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/upgrade"
)

// Machines started by a release handler read its feature flags; an
// operator changes a flag (here with the Set; on the admin socket with
// {"op":"flags","flag":"fast-dial","value":"on","who":"alice"}) and the
// machines see it at their next event, with no new version.
func ExampleWithFlags() {
	ctx := context.Background()
	sys := actor.NewSystem()
	defer func() { _ = sys.Shutdown(ctx) }()
	fl := flags.New(flags.WithLogger(quiet()))
	h, err := upgrade.NewReleaseHandler(sys, upgrade.WithReleaseLogger(quiet()), upgrade.WithFlags(fl))
	if err != nil {
		panic(err)
	}
	defer func() { _ = h.Close(ctx) }()
	if err := h.Register(gate("v1")); err != nil {
		panic(err)
	}
	ref, err := h.Start(ctx, "gate", fsm.WithID("555-0100"))
	if err != nil {
		panic(err)
	}
	ask := func() {
		v, err := fsm.Call(ctx, ref, Gate{"fast-dial"})
		if err != nil {
			panic(err)
		}
		fmt.Println(v)
	}
	ask()
	if _, err := fl.Set("fast-dial", flags.On, "alice"); err != nil {
		panic(err)
	}
	ask()
	// Output:
	// v1:off
	// v1:on
}
