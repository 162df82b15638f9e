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

// QueuedMessages tells the messages that stand for signals (an Exit of a
// trapped exit signal, a monitor's Down) from user messages: their Refs
// name actors of this System only, so what carries a mailbox elsewhere (a
// binary restart) must not take them for events.
func TestQueuedMessagesMarksSignals(t *testing.T) {
	synctest.Test(t, testQueuedMessagesMarksSignals)
}

func testQueuedMessagesMarksSignals(t *testing.T) {
	s := actortest.NewSystem(t)
	ctx := context.Background()
	linked, watched := actortest.NewProbe(t, s), actortest.NewProbe(t, s)
	got := make(inbox, 10)
	r := spawn(t, s, actor.BehaviorFunc(func(c *actor.Context, msg any) {
		switch msg {
		case "watch":
			c.TrapExits(true)
			c.Link(linked.Ref())
			c.Monitor(watched.Ref())
			c.Reply(nil)
			return
		}
		got <- msg
	}))
	_, err := actor.Call(ctx, r, "watch")
	require.NoError(t, err)
	require.NoError(t, actor.Suspend(ctx, r))
	require.NoError(t, actor.Send(r, 1))
	require.NoError(t, actor.Stop(ctx, linked.Ref(), actor.Shutdown))
	require.NoError(t, actor.Stop(ctx, watched.Ref(), actor.Shutdown))
	require.NoError(t, actor.Send(r, actor.Exit{Reason: actor.Shutdown})) // a user message of the type
	callDone := make(chan error, 1)
	go func() {
		_, err := actor.Call(ctx, r, actor.Down{}) // nor is a call's message a signal
		callDone <- err
	}()
	synctest.Wait()

	q, err := actor.QueuedMessages(ctx, r)
	require.NoError(t, err)
	require.Len(t, q, 5)
	require.Equal(t, actor.Queued{Msg: 1}, q[0])
	require.Equal(t, actor.Queued{Msg: actor.Exit{From: linked.Ref(), Reason: actor.Shutdown}, Signal: true}, q[1])
	down, ok := q[2].Msg.(actor.Down)
	require.True(t, ok, "%#v", q[2].Msg)
	require.Equal(t, watched.Ref(), down.Actor)
	require.True(t, q[2].Signal)
	// The mailbox cannot tell an Exit sent as a message from a signal's,
	// and treats it the same (a bound does not refuse it): so does
	// QueuedMessages.
	require.Equal(t, actor.Queued{Msg: actor.Exit{Reason: actor.Shutdown}, Signal: true}, q[3])
	require.Equal(t, actor.Queued{Msg: actor.Down{}, Call: true}, q[4])

	require.NoError(t, actor.Resume(ctx, r))
	for _, want := range q[:4] {
		require.Equal(t, want.Msg, got.next(t))
	}
	require.Equal(t, actor.Down{}, got.next(t))
	require.ErrorIs(t, <-callDone, actor.ErrNoReply)
}
