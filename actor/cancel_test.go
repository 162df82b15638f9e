package actor_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/actor/actortest"
)

// blocker is an actor that, on "block", holds its goroutine until release
// is closed, and answers "ping".
func blocker(t *testing.T, s *actor.System) (r actor.Ref, entered, release chan struct{}) {
	entered, release = make(chan struct{}), make(chan struct{})
	r = spawn(t, s, actor.BehaviorFunc(func(c *actor.Context, msg any) {
		switch msg {
		case "block":
			close(entered)
			<-release
		case "ping":
			c.Reply("pong")
		}
	}))
	require.NoError(t, actor.Send(r, "block"))
	<-entered
	return r, entered, release
}

// A Suspend whose ctx ends while it waits for a busy actor returns ctx's
// error, and the actor is not suspended afterwards: the request was
// dropped, not carried out later behind its caller's back.
func TestSuspendGivenUpIsNotCarriedOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := actortest.NewSystem(t)
		r, _, release := blocker(t, s)
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- actor.Suspend(ctx, r) }()
		synctest.Wait() // the request waits behind "block"
		cancel()
		require.ErrorIs(t, <-errc, context.Canceled)
		close(release)
		// Suspended, the actor would never answer: synctest would report
		// the deadlock.
		v, err := actor.Call(context.Background(), r, "ping")
		require.NoError(t, err)
		require.Equal(t, "pong", v)
	})
}

// A ChangeCode (and an Inspect) given up before the actor takes it never
// runs; one the actor has taken is answered with its own result even if
// its ctx ends meanwhile.
func TestChangeCodeGivenUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := actortest.NewSystem(t)
		r, _, release := blocker(t, s)
		bg := context.Background()
		suspended := make(chan error, 1)
		go func() { suspended <- actor.Suspend(bg, r) }()
		synctest.Wait()

		var ran atomic.Int32
		ctx, cancel := context.WithCancel(bg)
		changed, inspected := make(chan error, 1), make(chan error, 1)
		go func() {
			changed <- actor.ChangeCode(ctx, r, func(b actor.Behavior) (actor.Behavior, error) { ran.Add(1); return b, nil })
		}()
		synctest.Wait()
		go func() {
			inspected <- actor.Inspect(ctx, r, func(actor.Behavior) error { ran.Add(1); return nil })
		}()
		synctest.Wait()
		cancel()
		require.ErrorIs(t, <-changed, context.Canceled)
		require.ErrorIs(t, <-inspected, context.Canceled)
		close(release)
		require.NoError(t, <-suspended)
		require.NoError(t, actor.Inspect(bg, r, func(actor.Behavior) error { return nil })) // after the dropped ones
		require.Zero(t, ran.Load(), "a request given up ran")

		// Taken, then its ctx ends: the caller gets the change's answer.
		// The actor is suspended and idle, so the change runs on the
		// caller's goroutine: make the actor busy with a system message
		// first, an Inspect that holds it.
		holding, letGo := make(chan struct{}), make(chan struct{})
		go func() {
			_ = actor.Inspect(bg, r, func(actor.Behavior) error { close(holding); <-letGo; return nil })
		}()
		<-holding
		ctx2, cancel2 := context.WithCancel(bg)
		running, proceed := make(chan struct{}), make(chan struct{})
		go func() {
			changed <- actor.ChangeCode(ctx2, r, func(b actor.Behavior) (actor.Behavior, error) {
				close(running)
				<-proceed
				return b, nil
			})
		}()
		synctest.Wait()
		close(letGo)
		<-running
		cancel2()
		synctest.Wait()
		close(proceed)
		require.NoError(t, <-changed, "taken: its own answer, not ctx's")
		require.NoError(t, actor.Resume(bg, r))
		v, err := actor.Call(bg, r, "ping")
		require.NoError(t, err)
		require.Equal(t, "pong", v)
	})
}
