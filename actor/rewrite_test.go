package actor_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/actor/actortest"
)

// tagged is a Behavior that reports each message with its own tag, so that
// a test sees which Behavior handled it.
type tagged struct {
	tag string
	got inbox
}

func (b tagged) Receive(c *actor.Context, msg any) {
	s := fmt.Sprintf("%s:%v", b.tag, msg)
	if c.IsCall() {
		c.Reply(s)
	}
	b.got <- s
}

func TestChangeCodeQueued(t *testing.T) {
	synctest.Test(t, testChangeCodeQueued)
}

func testChangeCodeQueued(t *testing.T) {
	s := actortest.NewSystem(t)
	ctx := context.Background()
	got := make(inbox, 400)
	release, holding := make(chan struct{}), make(chan struct{})
	old := actor.BehaviorFunc(func(c *actor.Context, msg any) {
		if msg == 0 {
			close(holding)
			<-release
		}
		got <- fmt.Sprintf("old:%v", msg)
	})
	r := spawn(t, s, old)
	change := func(fn func(actor.Behavior, []actor.Queued) (actor.Behavior, []any, error)) error {
		return actor.ChangeCodeQueued(ctx, r, fn)
	}
	require.ErrorIs(t, change(func(b actor.Behavior, _ []actor.Queued) (actor.Behavior, []any, error) {
		return b, nil, nil
	}), actor.ErrNotSuspended)

	// The batch in hand (cur) and the queue behind it (user) both span
	// segments, and a call waits among them.
	for i := range 300 {
		require.NoError(t, actor.Send(r, i))
	}
	<-holding
	suspended := make(chan error, 1)
	go func() { suspended <- actor.Suspend(ctx, r) }()
	synctest.Wait()
	close(release)
	require.NoError(t, <-suspended)
	require.Equal(t, "old:0", got.next(t))
	reply := make(chan any, 1)
	go func() {
		v, err := actor.Call(ctx, r, 300)
		require.NoError(t, err)
		reply <- v
	}()
	synctest.Wait()
	for i := 301; i < 400; i++ {
		require.NoError(t, actor.Send(r, i))
	}

	// Failures change nothing: neither the Behavior nor the messages.
	boom := errors.New("boom")
	for name, fn := range map[string]func(actor.Behavior, []actor.Queued) (actor.Behavior, []any, error){
		"error": func(actor.Behavior, []actor.Queued) (actor.Behavior, []any, error) {
			return tagged{"new", got}, nil, boom
		},
		"panic": func(actor.Behavior, []actor.Queued) (actor.Behavior, []any, error) { panic(boom) },
		"short list": func(_ actor.Behavior, q []actor.Queued) (actor.Behavior, []any, error) {
			return tagged{"new", got}, make([]any, len(q)-1), nil
		},
		"nil behavior": func(_ actor.Behavior, q []actor.Queued) (actor.Behavior, []any, error) {
			return nil, make([]any, len(q)), nil
		},
	} {
		err := change(fn)
		require.Error(t, err, name)
		if name == "panic" {
			var p *actor.PanicError
			require.ErrorAs(t, err, &p)
		}
		q, err := actor.QueuedMessages(ctx, r)
		require.NoError(t, err)
		require.Len(t, q, 399, name)
		require.Equal(t, actor.Queued{Msg: 1}, q[0], name)
		require.Equal(t, actor.Queued{Msg: 300, Call: true}, q[299], name)
	}

	// The change: every queued message as fn lists it, rewritten; one
	// sent while fn runs is left as sent.
	require.NoError(t, change(func(_ actor.Behavior, q []actor.Queued) (actor.Behavior, []any, error) {
		require.Len(t, q, 399)
		out := make([]any, len(q))
		for i, m := range q {
			require.Equal(t, i+1, m.Msg)
			require.Equal(t, i == 299, m.Call)
			out[i] = fmt.Sprintf("v2(%d)", m.Msg)
		}
		require.NoError(t, actor.Send(r, 400))
		return tagged{"new", got}, out, nil
	}))
	require.NoError(t, actor.Resume(ctx, r))
	for i := 1; i < 400; i++ {
		require.Equal(t, fmt.Sprintf("new:v2(%d)", i), got.next(t))
	}
	require.Equal(t, "new:v2(300)", <-reply, "the call keeps its caller")
	require.Equal(t, "new:400", got.next(t))
}

// A message that a DropOldest bound drops while fn runs stays dropped, and
// the rest are rewritten in their places.
func TestChangeCodeQueuedDropOldest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := actortest.NewSystem(t)
		ctx := context.Background()
		got := make(inbox, 20)
		r := spawn(t, s, tagged{"old", got}, actor.WithMailbox(4, actor.DropOldest))
		require.NoError(t, actor.Suspend(ctx, r))
		for i := range 4 {
			require.NoError(t, actor.Send(r, i))
		}
		require.NoError(t, actor.ChangeCodeQueued(ctx, r, func(_ actor.Behavior, q []actor.Queued) (actor.Behavior, []any, error) {
			require.Len(t, q, 4)
			// Two newer messages push out 0 and 1.
			require.NoError(t, actor.Send(r, 4))
			require.NoError(t, actor.Send(r, 5))
			return tagged{"new", got}, []any{"a", "b", "c", "d"}, nil
		}))
		require.NoError(t, actor.Resume(ctx, r))
		for _, want := range []string{"new:c", "new:d", "new:4", "new:5"} {
			require.Equal(t, want, got.next(t))
		}
		synctest.Wait()
		require.Empty(t, got)
	})
}

// fn returning no list leaves the messages as they are.
func TestChangeCodeQueuedNoList(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := actortest.NewSystem(t)
		ctx := context.Background()
		got := make(inbox, 4)
		r := spawn(t, s, tagged{"old", got})
		require.NoError(t, actor.Suspend(ctx, r))
		require.NoError(t, actor.ChangeCodeQueued(ctx, r, func(_ actor.Behavior, q []actor.Queued) (actor.Behavior, []any, error) {
			require.Empty(t, q, "an actor that never had a message")
			return tagged{"mid", got}, []any{}, nil
		}))
		require.NoError(t, actor.Send(r, 1))
		require.NoError(t, actor.ChangeCodeQueued(ctx, r, func(_ actor.Behavior, q []actor.Queued) (actor.Behavior, []any, error) {
			require.Equal(t, []actor.Queued{{Msg: 1}}, q)
			return tagged{"new", got}, nil, nil
		}))
		require.NoError(t, actor.Resume(ctx, r))
		require.Equal(t, "new:1", got.next(t))
	})
}
