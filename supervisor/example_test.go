package supervisor_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/supervisor"
)

// A worker for the examples: it panics when told to crash, and answers
// "name?" with its machine's name.
func exampleWorker(name string) actor.Behavior {
	return actor.BehaviorFunc(func(c *actor.Context, msg any) {
		switch msg {
		case "crash":
			panic("boom")
		case "name?":
			c.Reply(name)
		}
	})
}

// A tree of two levels: a leaf's crash is handled by its own supervisor,
// by that supervisor's strategy.
func Example() {
	sys := actor.NewSystem(actor.WithLogger(slog.New(slog.DiscardHandler)))
	ctx := context.Background()
	started := make(chan string, 16)
	worker := func(id string) supervisor.ChildSpec {
		return supervisor.ChildSpec{ID: id, Start: func(sc supervisor.StartContext) (actor.Ref, error) {
			started <- id
			return sc.Spawn(exampleWorker(id))
		}}
	}

	// root (one-for-one)
	// ├── db
	// └── calls (rest-for-one)
	//     ├── router
	//     └── billing
	root, err := supervisor.Start(sys, supervisor.OneForOne, []supervisor.ChildSpec{
		worker("db"),
		supervisor.SubtreeSpec("calls", supervisor.RestForOne, []supervisor.ChildSpec{
			worker("router"),
			worker("billing"),
		}),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for range 3 {
		fmt.Println("started", <-started)
	}

	// The router crashes: rest-for-one restarts it and billing, started
	// after it; db is untouched.
	workers, err := supervisor.Workers(ctx, root)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := actor.Send(workers[1].Ref, "crash"); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("restarted", <-started)
	fmt.Println("restarted", <-started)

	if err := sys.Shutdown(ctx); err != nil {
		fmt.Println(err)
	}
	// Output:
	// started db
	// started router
	// started billing
	// restarted router
	// restarted billing
}

// A simple-one-for-one supervisor starts children of one spec at run
// time, each with its own arguments.
func ExampleStartChild() {
	sys := actor.NewSystem(actor.WithLogger(slog.New(slog.DiscardHandler)))
	ctx := context.Background()
	calls, err := supervisor.Start(sys, supervisor.SimpleOneForOne, []supervisor.ChildSpec{{
		ID:      "call",
		Restart: supervisor.Temporary,
		Start: func(sc supervisor.StartContext) (actor.Ref, error) {
			return sc.Spawn(exampleWorker(sc.Args()[0].(string)))
		},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, number := range []string{"555-0100", "555-0199"} {
		if _, err := supervisor.StartChild(ctx, calls, number); err != nil {
			fmt.Println(err)
			return
		}
	}
	counts, err := supervisor.CountChildren(ctx, calls)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d active\n", counts.Active)
	children, err := supervisor.WhichChildren(ctx, calls)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, ch := range children {
		fmt.Println(ch.ID, ch.Args[0], ch.Status)
	}

	if err := sys.Shutdown(ctx); err != nil {
		fmt.Println(err)
	}
	// Output:
	// 2 active
	// call 555-0100 running
	// call 555-0199 running
}

// Workers finds every running worker under a tree; asking each for its
// name picks out the machines of one kind, the way an upgrade finds the
// machines it must move.
func ExampleWorkers() {
	sys := actor.NewSystem(actor.WithLogger(slog.New(slog.DiscardHandler)))
	ctx := context.Background()
	machine := func(id, name string) supervisor.ChildSpec {
		return supervisor.ChildSpec{ID: id, Start: func(sc supervisor.StartContext) (actor.Ref, error) {
			return sc.Spawn(exampleWorker(name))
		}}
	}
	root, err := supervisor.Start(sys, supervisor.OneForOne, []supervisor.ChildSpec{
		machine("line-1", "phoneswitch"),
		supervisor.SubtreeSpec("media", supervisor.OneForOne, []supervisor.ChildSpec{
			machine("codec", "transcoder"),
			machine("line-2", "phoneswitch"),
		}),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	workers, err := supervisor.Workers(ctx, root)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, w := range workers {
		name, err := actor.Call(ctx, w.Ref, "name?")
		if err != nil {
			fmt.Println(err)
			return
		}
		if name != "phoneswitch" {
			continue
		}
		under := "media"
		if w.Supervisor == root {
			under = "root"
		}
		fmt.Println(w.ID, "under", under)
	}

	if err := sys.Shutdown(ctx); err != nil {
		fmt.Println(err)
	}
	// Output:
	// line-1 under root
	// line-2 under media
}

// A supervisor past its restart intensity stops its children and exits
// with an *IntensityError that names the child and its last reason.
func ExampleIntensityError() {
	sys := actor.NewSystem(actor.WithLogger(slog.New(slog.DiscardHandler)))
	ctx := context.Background()
	sup, err := supervisor.Start(sys, supervisor.OneForOne, []supervisor.ChildSpec{{
		ID: "flaky",
		Start: func(sc supervisor.StartContext) (actor.Ref, error) {
			return sc.Spawn(exampleWorker("flaky"))
		},
	}}, supervisor.WithIntensity(0, time.Minute)) // no restart at all
	if err != nil {
		fmt.Println(err)
		return
	}
	children, err := supervisor.WhichChildren(ctx, sup)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := actor.Send(children[0].Ref, "crash"); err != nil {
		fmt.Println(err)
		return
	}
	reason, err := actor.Wait(ctx, sup)
	if err != nil {
		fmt.Println(err)
		return
	}
	var ie *supervisor.IntensityError
	if errors.As(reason, &ie) {
		fmt.Println("gave up on", ie.Child, "after", ie.Last)
	}
	fmt.Println("counts as a shutdown:", errors.Is(reason, actor.Shutdown))

	if err := sys.Shutdown(ctx); err != nil {
		fmt.Println(err)
	}
	// Output:
	// gave up on flaky after actor: panic: boom
	// counts as a shutdown: true
}
