package actor_test

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/actor/actortest"
)

func TestQueuedMessages(t *testing.T) {
	synctest.Test(t, testQueuedMessages)
}

func testQueuedMessages(t *testing.T) {
	s := actortest.NewSystem(t)
	ctx := context.Background()
	release, holding := make(chan struct{}), make(chan struct{})
	got := make(inbox, 400)
	r := spawn(t, s, actor.BehaviorFunc(func(c *actor.Context, msg any) {
		if msg == 0 {
			close(holding)
			<-release
		}
		if c.IsCall() {
			c.Reply(msg)
		}
		got <- msg
	}))
	_, err := actor.QueuedMessages(ctx, r)
	require.ErrorIs(t, err, actor.ErrNotSuspended)

	// More than a segment, so that the batch in hand and the queue behind
	// it both span segments.
	for i := range 300 {
		require.NoError(t, actor.Send(r, i))
	}
	<-holding
	suspended := make(chan error, 1)
	go func() { suspended <- actor.Suspend(ctx, r) }()
	synctest.Wait()
	close(release)
	require.NoError(t, <-suspended)
	require.Equal(t, 0, got.next(t))
	callDone := make(chan error, 1)
	go func() {
		_, err := actor.Call(ctx, r, "call")
		callDone <- err
	}()
	synctest.Wait()
	require.NoError(t, actor.Send(r, 300))

	q, err := actor.QueuedMessages(ctx, r)
	require.NoError(t, err)
	require.Len(t, q, 301)
	for i := 1; i < 300; i++ {
		require.Equal(t, actor.Queued{Msg: i}, q[i-1])
	}
	require.Equal(t, actor.Queued{Msg: "call", Call: true}, q[299])
	require.Equal(t, actor.Queued{Msg: 300}, q[300])

	require.NoError(t, actor.Resume(ctx, r))
	for i := 1; i < 300; i++ {
		require.Equal(t, i, got.next(t), "the messages stay queued")
	}
	require.Equal(t, "call", got.next(t))
	require.NoError(t, <-callDone)
	require.Equal(t, 300, got.next(t))

	require.NoError(t, actor.Stop(ctx, r, nil))
	_, err = actor.QueuedMessages(ctx, r)
	require.ErrorIs(t, err, actor.ErrNoProc)
}
