package actor_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/actor/actortest"
)

// goroutineID reads the running goroutine's number from its stack header;
// tests use it to see which goroutine ran a handler.
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	buf = bytes.TrimPrefix(buf, []byte("goroutine "))
	return string(buf[:bytes.IndexByte(buf, ' ')])
}

// An actor that exits on a worker hands its exit signal to an idle linked
// actor on that same goroutine, once its own exit is complete: the linked
// actor's handler runs where the exiting actor's terminate hook ran, and
// no other goroutine is woken for it.
func TestExitSignalHandledOnTheExitingWorker(t *testing.T) {
	s := actortest.NewSystem(t)
	boom := errors.New("boom")
	type seen struct {
		g    string
		exit actor.Exit
	}
	terminated, trapped := make(chan string, 1), make(chan seen, 1)
	parent := spawn(t, s, &fn{
		init: func(c *actor.Context) error { c.TrapExits(true); return nil },
		receive: func(c *actor.Context, msg any) {
			if m, ok := msg.(actor.Exit); ok {
				trapped <- seen{goroutineID(), m}
			}
		},
	})
	child := spawn(t, s, &fn{
		receive:   func(c *actor.Context, msg any) { c.Stop(boom) },
		terminate: func(*actor.Context, error) { terminated <- goroutineID() },
	}, actor.LinkTo(parent))

	require.NoError(t, actor.Send(child, "crash"))
	g := <-terminated
	got := <-trapped
	require.Equal(t, actor.Exit{From: child, Reason: boom}, got.exit)
	require.Equal(t, g, got.g, "the exit signal was handled on another goroutine than the exit")
}

// The hand-off runs after the exit is complete: an Exit handler may wait
// for the actor that exited (actor.Wait) without waiting for itself.
func TestExitHandlerMayWaitForTheExitedActor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := actor.NewSystem()
		defer func() { require.NoError(t, s.Shutdown(context.Background())) }()
		boom := errors.New("boom")
		waited := make(chan error, 1)
		parent := spawn(t, s, &fn{
			init: func(c *actor.Context) error { c.TrapExits(true); return nil },
			receive: func(c *actor.Context, msg any) {
				if m, ok := msg.(actor.Exit); ok {
					reason, err := actor.Wait(context.Background(), m.From)
					require.NoError(t, err)
					waited <- reason
				}
			},
		})
		child := spawn(t, s, &fn{receive: func(c *actor.Context, msg any) { c.Stop(boom) }}, actor.LinkTo(parent))
		require.NoError(t, actor.Send(child, "crash"))
		require.ErrorIs(t, <-waited, boom)
	})
}

// An actor that exits during a Call run on its caller's goroutine does not
// make that caller run a linked actor's handler: the handler may wait for
// the caller, as here, where it calls the actor whose handler made the
// Call. On a worker the signal goes to the linked actor's mailbox and the
// two calls finish one after the other.
func TestCallerDoesNotRunLinkedActors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := actor.NewSystem()
		defer func() { require.NoError(t, s.Shutdown(context.Background())) }()
		ctx := context.Background()
		var caller actor.Ref
		answered := make(chan any, 1)
		parent := spawn(t, s, &fn{
			init: func(c *actor.Context) error { c.TrapExits(true); return nil },
			receive: func(c *actor.Context, msg any) {
				if _, ok := msg.(actor.Exit); ok {
					v, err := actor.Call(ctx, caller, "ping")
					require.NoError(t, err)
					answered <- v
				}
			},
		})
		child := spawn(t, s, &fn{receive: func(c *actor.Context, msg any) {
			c.Reply("bye")
			c.Stop(errors.New("done"))
		}}, actor.LinkTo(parent))
		caller = spawn(t, s, &fn{receive: func(c *actor.Context, msg any) {
			switch msg {
			case "go":
				// child is idle and ctx cannot end: this Call runs the
				// child's handler, and its exit, on this goroutine.
				v, err := actor.Call(ctx, child, "stop")
				require.NoError(t, err)
				c.Reply(v)
			case "ping":
				c.Reply("pong")
			}
		}})
		v, err := actor.Call(ctx, caller, "go")
		require.NoError(t, err)
		require.Equal(t, "bye", v)
		require.Equal(t, "pong", <-answered)
	})
}
