package actor_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/hotline-go/hotline/actor"
)

// A counter actor: casts change its state, calls read it.
type Counter struct{ n int }

type Add int
type Get struct{}

func (c *Counter) Receive(ctx *actor.Context, msg any) {
	switch m := msg.(type) {
	case Add:
		c.n += int(m)
	case Get:
		ctx.Reply(c.n)
	}
}

func Example() {
	sys := actor.NewSystem()
	defer sys.Shutdown(context.Background())

	counter, err := sys.Spawn(&Counter{}, actor.WithName("counter"))
	if err != nil {
		panic(err)
	}
	for i := 1; i <= 3; i++ {
		actor.Send(counter, Add(i)) // asynchronous; order kept
	}
	n, err := actor.Call(context.Background(), counter, Get{})
	fmt.Println(n, err)
	// Output: 6 <nil>
}

// Links carry a crash to the other side; a trapping actor hears of it.
func ExampleContext_TrapExits() {
	sys := actor.NewSystem(actor.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer sys.Shutdown(context.Background())

	exits := make(chan actor.Exit, 1)
	parent, _ := sys.Spawn(actor.BehaviorFunc(func(c *actor.Context, msg any) {
		switch m := msg.(type) {
		case string: // "trap"
			c.TrapExits(true)
			c.Reply(nil)
		case actor.Exit:
			exits <- m
		}
	}))
	actor.Call(context.Background(), parent, "trap")

	child, _ := sys.Spawn(actor.BehaviorFunc(func(c *actor.Context, msg any) {
		c.Stop(errors.New("disk full"))
	}), actor.LinkTo(parent))
	actor.Send(child, "work")

	e := <-exits
	fmt.Println(e.From == child, e.Reason)
	// Output: true disk full
}

// Suspend, change code, resume: messages sent meanwhile wait and meet the
// new code.
func ExampleChangeCode() {
	sys := actor.NewSystem()
	defer sys.Shutdown(context.Background())
	ctx := context.Background()

	greet := func(greeting string) actor.Behavior {
		return actor.BehaviorFunc(func(c *actor.Context, msg any) {
			c.Reply(greeting + ", " + msg.(string))
		})
	}
	r, _ := sys.Spawn(greet("hello"))
	v, _ := actor.Call(ctx, r, "world")
	fmt.Println(v)

	actor.Suspend(ctx, r)
	actor.ChangeCode(ctx, r, func(old actor.Behavior) (actor.Behavior, error) {
		return greet("bonjour"), nil
	})
	actor.Resume(ctx, r)
	v, _ = actor.Call(ctx, r, "le monde")
	fmt.Println(v)
	// Output:
	// hello, world
	// bonjour, le monde
}

// Suspensions are counted: two callers suspend the same actor, and it
// handles its messages again only when both have resumed it.
func ExampleSuspend() {
	sys := actor.NewSystem()
	defer sys.Shutdown(context.Background())
	ctx := context.Background()

	got := make(chan any, 1)
	r, _ := sys.Spawn(actor.BehaviorFunc(func(_ *actor.Context, msg any) { got <- msg }))
	actor.Suspend(ctx, r) // a release handler's
	actor.Suspend(ctx, r) // an operator's
	actor.Send(r, "hello")

	actor.Resume(ctx, r) // the release handler is done
	_, err := actor.QueuedMessages(ctx, r)
	fmt.Println("still suspended:", err == nil)

	actor.Resume(ctx, r) // so is the operator
	fmt.Println(<-got)
	fmt.Println(actor.Resume(ctx, r))
	// Output:
	// still suspended: true
	// hello
	// actor: not suspended
}

// A monitor delivers Down once, with the reason.
func ExampleContext_Monitor() {
	sys := actor.NewSystem(actor.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer sys.Shutdown(context.Background())

	worker, _ := sys.Spawn(actor.BehaviorFunc(func(*actor.Context, any) { panic("bad input") }))
	downs := make(chan actor.Down, 1)
	ready := make(chan struct{})
	spy, _ := sys.Spawn(actor.BehaviorFunc(func(c *actor.Context, msg any) {
		if msg == "watch" {
			c.Monitor(worker)
			close(ready)
			return
		}
		if d, ok := msg.(actor.Down); ok {
			downs <- d
		}
	}))
	actor.Send(spy, "watch")
	<-ready
	actor.Send(worker, "crash")
	d := <-downs
	var p *actor.PanicError
	fmt.Println(d.Actor == worker, errors.As(d.Reason, &p), p.Value)
	// Output: true true bad input
}

// DemonitorFlush forgets a monitor, and its Down if it is already queued.
func ExampleContext_DemonitorFlush() {
	sys := actor.NewSystem()
	defer sys.Shutdown(context.Background())
	ctx := context.Background()

	worker, _ := sys.Spawn(actor.BehaviorFunc(func(*actor.Context, any) {}))
	var mon actor.MonitorRef
	watcher, _ := sys.Spawn(actor.BehaviorFunc(func(c *actor.Context, msg any) {
		switch msg := msg.(type) {
		case actor.Ref:
			mon = c.Monitor(msg)
		case actor.Down:
			fmt.Println("down")
		case string:
			if msg == "forget" {
				c.DemonitorFlush(mon)
			}
			fmt.Println(msg)
		}
	}))
	actor.Call(ctx, watcher, worker)

	// The watcher is suspended while the worker stops, so its Down waits
	// behind "forget".
	actor.Suspend(ctx, watcher)
	actor.Send(watcher, "forget")
	actor.Stop(ctx, worker, nil)
	actor.Resume(ctx, watcher)
	actor.Call(ctx, watcher, "done")
	// Output:
	// forget
	// done
}
