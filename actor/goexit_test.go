package actor_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/actor/actortest"
)

// A handler that calls runtime.Goexit (as t.FailNow does in a test's
// Behavior) ends its actor with ErrGoexit, on a worker and on a caller's
// goroutine alike: links and monitors learn it, a Call being handled gets
// it, the Terminate hook runs, and the System shuts down. Before, the actor
// stayed scheduled for ever: calls to it hung, and so did Shutdown.
func TestGoexitInHandlerEndsTheActor(t *testing.T) {
	for _, how := range []string{"send", "call on a worker", "call on the caller's goroutine"} {
		t.Run(how, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := actortest.NewSystem(t)
				terminated := make(chan error, 1)
				r := spawn(t, s, &goexiter{terminated: terminated})
				ctx := context.Background()
				mon := spawn(t, s, actor.BehaviorFunc(func(*actor.Context, any) {}))
				done := make(chan error, 1)
				switch how {
				case "send":
					require.NoError(t, actor.Send(r, "exit"))
					close(done)
				case "call on a worker":
					go func() {
						cctx, cancel := context.WithCancel(ctx) // a ctx that can end: the mailbox path
						defer cancel()
						_, err := actor.Call(cctx, r, "exit")
						done <- err
					}()
				case "call on the caller's goroutine":
					go func() {
						defer close(done) // runs: the goroutine exits by Goexit
						_, _ = actor.Call(ctx, r, "exit")
						t.Error("Call returned on a goroutine that called runtime.Goexit")
					}()
				}
				reason, err := actor.Wait(ctx, r)
				require.NoError(t, err)
				require.ErrorIs(t, reason, actor.ErrGoexit)
				require.ErrorIs(t, <-terminated, actor.ErrGoexit, "the Terminate hook ran with the reason")
				if err, ok := <-done; ok {
					var ee *actor.ExitError
					require.ErrorAs(t, err, &ee, "the call being handled gets the exit")
					require.ErrorIs(t, err, actor.ErrGoexit)
				}
				_, err = actor.Call(ctx, r, "again")
				require.ErrorIs(t, err, actor.ErrNoProc)
				require.NoError(t, actor.Send(mon, "still here"))
			})
		})
	}
}

type goexiter struct{ terminated chan error }

func (*goexiter) Receive(*actor.Context, any) { runtime.Goexit() }

func (g *goexiter) Terminate(_ *actor.Context, reason error) { g.terminated <- reason }

// A Terminate hook that calls runtime.Goexit still lets its actor exit,
// with the reason it was stopping for.
func TestGoexitInTerminateStillExits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := actortest.NewSystem(t)
		r := spawn(t, s, goexitOnTerminate{})
		require.NoError(t, actor.Send(r, "stop"))
		reason, err := actor.Wait(context.Background(), r)
		require.NoError(t, err)
		require.ErrorIs(t, reason, errStopping)
	})
}

var errStopping = errors.New("stopping")

type goexitOnTerminate struct{}

func (goexitOnTerminate) Receive(c *actor.Context, _ any) { c.Stop(errStopping) }
func (goexitOnTerminate) Terminate(*actor.Context, error) { runtime.Goexit() }

// A ChangeCode or Inspect function that calls runtime.Goexit ends the
// actor with ErrGoexit (its Behavior may be half changed): on a worker,
// its requester gets an *ExitError and the requests queued behind it in
// the same batch get ErrNoProc; run on the caller's goroutine (a suspended
// idle actor), that goroutine goes on exiting. Before, the actor stayed
// scheduled for ever, and every request to it hung.
func TestGoexitInSystemFunction(t *testing.T) {
	goexit := func(actor.Behavior) error { runtime.Goexit(); return nil }
	t.Run("on a worker", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := actortest.NewSystem(t)
			busy, letGo := make(chan struct{}), make(chan struct{})
			r := spawn(t, s, actor.BehaviorFunc(func(*actor.Context, any) {
				close(busy)
				<-letGo
			}))
			ctx := context.Background()
			require.NoError(t, actor.Send(r, "hold"))
			<-busy
			first, second := make(chan error, 1), make(chan error, 1)
			go func() { first <- actor.Inspect(ctx, r, goexit) }()
			synctest.Wait()
			go func() { second <- actor.Inspect(ctx, r, func(actor.Behavior) error { return nil }) }()
			synctest.Wait() // both queued behind the handler, in one batch
			close(letGo)
			err := <-first
			var ee *actor.ExitError
			require.ErrorAs(t, err, &ee)
			require.ErrorIs(t, err, actor.ErrGoexit)
			require.ErrorIs(t, <-second, actor.ErrNoProc, "the request behind it is answered")
			reason, err := actor.Wait(ctx, r)
			require.NoError(t, err)
			require.ErrorIs(t, reason, actor.ErrGoexit)
		})
	})
	t.Run("on the caller's goroutine", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := actortest.NewSystem(t)
			r := spawn(t, s, actor.BehaviorFunc(func(*actor.Context, any) {}))
			ctx := context.Background()
			require.NoError(t, actor.Suspend(ctx, r))
			done := make(chan struct{})
			go func() {
				defer close(done) // runs: the goroutine exits by Goexit
				_ = actor.ChangeCode(ctx, r, func(b actor.Behavior) (actor.Behavior, error) {
					runtime.Goexit()
					return b, nil
				})
				t.Error("ChangeCode returned on a goroutine that called runtime.Goexit")
			}()
			<-done
			reason, err := actor.Wait(ctx, r)
			require.NoError(t, err)
			require.ErrorIs(t, reason, actor.ErrGoexit)
			require.ErrorIs(t, actor.Resume(ctx, r), actor.ErrNoProc)
		})
	})
}

// An Init that calls runtime.Goexit abandons its actor as a failed Init
// does: what it linked to is told, and the System shuts down. Before, the
// actor stayed among the System's for ever, and Shutdown hung.
func TestGoexitInInit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := actor.NewSystem()
		ctx := context.Background()
		var child actor.Ref
		done := make(chan struct{})
		go func() {
			defer close(done) // runs: the goroutine exits by Goexit
			_, _ = s.Spawn(initGoexit{child: &child})
			t.Error("Spawn returned on a goroutine that called runtime.Goexit")
		}()
		<-done
		reason, err := actor.Wait(ctx, child)
		require.NoError(t, err)
		require.ErrorIs(t, reason, actor.ErrGoexit, "the child linked in Init went down with it")
		require.NoError(t, s.Shutdown(ctx))
	})
}

type initGoexit struct{ child *actor.Ref }

func (g initGoexit) Init(c *actor.Context) error {
	r, err := c.System().Spawn(actor.BehaviorFunc(func(*actor.Context, any) {}), actor.LinkTo(c.Self()))
	if err != nil {
		return err
	}
	*g.child = r
	runtime.Goexit()
	return nil
}

func (initGoexit) Receive(*actor.Context, any) {}
