package actor_test

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/actor/actortest"
)

// A kill sent while a Stop waits behind a busy handler overtakes it: the
// actor exits Killed when the handler returns, and its terminate hook does
// not run. This is what makes a supervisor's shutdown timeout mean
// something.
func TestKillOvertakesQueuedStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := actortest.NewSystem(t)
		release := make(chan struct{})
		terminated := false
		r := spawn(t, s, &fn{
			receive:   func(*actor.Context, any) { <-release },
			terminate: func(*actor.Context, error) { terminated = true },
		})
		require.NoError(t, actor.Send(r, "work"))
		synctest.Wait() // the handler is blocked on release

		stopped := make(chan error, 1)
		go func() { stopped <- actor.Stop(context.Background(), r, actor.Shutdown) }()
		synctest.Wait() // the stop is queued
		require.NoError(t, actor.Kill(r))
		close(release)

		reason, err := actor.Wait(context.Background(), r)
		require.NoError(t, err)
		require.ErrorIs(t, reason, actor.Killed)
		require.False(t, terminated, "the kill overtook the stop: no terminate hook")
		require.NoError(t, <-stopped)
	})
}

// Stop with a ctx already done still asks the actor to stop.
func TestStopWithDoneContextStillAsks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := actortest.NewSystem(t)
		reasons := make(chan error, 1)
		r := spawn(t, s, &fn{terminate: func(_ *actor.Context, reason error) { reasons <- reason }})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := actor.Stop(ctx, r, actor.Shutdown); err != nil {
			require.ErrorIs(t, err, context.Canceled)
		}
		reason, err := actor.Wait(context.Background(), r)
		require.NoError(t, err)
		require.ErrorIs(t, reason, actor.Shutdown)
		require.ErrorIs(t, <-reasons, actor.Shutdown)
	})
}
