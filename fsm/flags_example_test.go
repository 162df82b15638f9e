package fsm_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/flags"
	"github.com/hotline-go/hotline/fsm"
)

// Ring is an event of ExampleOnFlags.
type Ring struct{}

// A handler declared with OnFlags reads its machine's feature flags; an
// operator changes them while the machine runs, with no new version.
func ExampleOnFlags() {
	ctx := context.Background()
	sys := actor.NewSystem()
	defer shutdownExample(sys)

	m := fsm.Define("bell", "v1", "idle", 0)
	fsm.OnFlags(m, "idle", func(_ Ring, n int, f fsm.Flags) fsm.Result[int] {
		if f.On("loud") {
			return fsm.Keep(n+1, fsm.Reply("RING"))
		}
		return fsm.Keep(n+1, fsm.Reply("ring"))
	})

	fl := flags.New(flags.WithLogger(slog.New(slog.DiscardHandler)))
	ref, err := fsm.Start(ctx, sys, m, fsm.WithID("bell-1"), fsm.WithFlags(fl))
	if err != nil {
		panic(err)
	}
	ring := func() {
		v, err := fsm.Call(ctx, ref, Ring{})
		if err != nil {
			panic(err)
		}
		fmt.Println(v)
	}
	ring()
	if _, err := fl.Set("loud", flags.On, "alice"); err != nil {
		panic(err)
	}
	ring()
	// Output:
	// ring
	// RING
}
