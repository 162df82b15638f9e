package actor_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/actor/actortest"
)

// A trapped exit signal is an Exit message in the mailbox: it comes after
// the user messages that were waiting when it arrived, whether the actor
// was busy or suspended.
func TestTrappedExitComesAfterWaitingMessages(t *testing.T) {
	boom := errors.New("boom")
	for _, mode := range []string{"busy", "suspended"} {
		t.Run(mode, func(t *testing.T) {
			s := actortest.NewSystem(t)
			got := make(inbox, 8)
			release := make(chan struct{})
			r := spawn(t, s, &fn{
				init: func(c *actor.Context) error { c.TrapExits(true); return nil },
				receive: func(c *actor.Context, msg any) {
					if msg == "block" {
						got <- msg
						<-release
						return
					}
					got <- msg
				},
			})
			ctx := context.Background()
			if mode == "busy" {
				require.NoError(t, actor.Send(r, "block"))
				require.Equal(t, "block", got.next(t))
			} else {
				require.NoError(t, actor.Suspend(ctx, r))
			}
			require.NoError(t, actor.Send(r, "a"))
			require.NoError(t, actor.SendExit(r, boom))
			// The exit signal has been taken by now: an Inspect queued
			// behind it answers only once it has been handled.
			if mode == "busy" {
				close(release)
			} else {
				require.NoError(t, actor.Inspect(ctx, r, func(actor.Behavior) error { return nil }))
				require.NoError(t, actor.Resume(ctx, r))
			}
			require.Equal(t, "a", got.next(t))
			e, ok := got.next(t).(actor.Exit)
			require.True(t, ok, "the Exit comes after the message that waited")
			require.ErrorIs(t, e.Reason, boom)
		})
	}
}

// An Exit handed over at once is handled as any message: a Stop or a
// panic in its handler ends the actor with that reason.
func TestTrappedExitHandlerEndsActor(t *testing.T) {
	boom, done := errors.New("boom"), errors.New("done with it")
	tests := []struct {
		name   string
		handle func(c *actor.Context)
		check  func(t *testing.T, reason error)
	}{
		{"stop", func(c *actor.Context) { c.Stop(done) }, func(t *testing.T, reason error) { require.ErrorIs(t, reason, done) }},
		{"panic", func(*actor.Context) { panic("in exit handler") }, func(t *testing.T, reason error) {
			var pe *actor.PanicError
			require.ErrorAs(t, reason, &pe)
			require.Equal(t, "in exit handler", pe.Value)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := actortest.NewSystem(t)
			terminated := make(inbox, 1)
			r := spawn(t, s, &fn{
				init: func(c *actor.Context) error { c.TrapExits(true); return nil },
				receive: func(c *actor.Context, msg any) {
					if _, ok := msg.(actor.Exit); ok {
						tt.handle(c)
					}
				},
				terminate: func(_ *actor.Context, reason error) { terminated <- reason },
			})
			linked := spawn(t, s, actor.BehaviorFunc(func(c *actor.Context, _ any) { c.Stop(boom) }), actor.LinkTo(r))
			require.NoError(t, actor.Send(linked, "die"))
			reason := waitExit(t, r)
			tt.check(t, reason)
			require.Equal(t, reason, terminated.next(t), "the terminate hook ran with the same reason")
		})
	}
}

// An actor linked to several others signals each of them when it exits,
// except those that unlinked.
func TestExitSignalsEveryLink(t *testing.T) {
	s := actortest.NewSystem(t)
	boom := errors.New("boom")
	type watcher struct {
		ref actor.Ref
		got inbox
	}
	watchers := make([]watcher, 3)
	for i := range watchers {
		got := make(inbox, 4)
		watchers[i] = watcher{got: got, ref: spawn(t, s, &fn{
			init: func(c *actor.Context) error { c.TrapExits(true); return nil },
			receive: func(c *actor.Context, msg any) {
				got <- msg
				c.Reply(nil)
			},
		})}
	}
	x := spawn(t, s, actor.BehaviorFunc(func(c *actor.Context, msg any) {
		switch m := msg.(type) {
		case actor.Ref:
			c.Link(m)
			c.Reply(nil)
		case string:
			if m == "unlink" {
				c.Unlink(watchers[1].ref)
				c.Reply(nil)
				return
			}
			c.Stop(boom)
		}
	}), actor.LinkTo(watchers[0].ref))
	ctx := context.Background()
	for _, w := range watchers[1:] {
		_, err := actor.Call(ctx, x, w.ref)
		require.NoError(t, err)
	}
	_, err := actor.Call(ctx, x, "unlink")
	require.NoError(t, err)
	require.NoError(t, actor.Send(x, "die"))
	require.ErrorIs(t, waitExit(t, x), boom)
	for i, w := range watchers {
		// System messages are handled in order: once the Inspect is
		// answered, x's exit signal has become an Exit message (or been
		// handled), and the Call comes after it.
		require.NoError(t, actor.Inspect(ctx, w.ref, func(actor.Behavior) error { return nil }))
		_, err := actor.Call(ctx, w.ref, "after")
		require.NoError(t, err)
		if i == 1 {
			require.Equal(t, "after", w.got.next(t), "an unlinked actor gets no exit signal")
			continue
		}
		m := w.got.next(t)
		e, ok := m.(actor.Exit)
		require.True(t, ok, "watcher %d gets x's exit, not %#v", i, m)
		require.Equal(t, x, e.From)
		require.ErrorIs(t, e.Reason, boom)
		require.Equal(t, "after", w.got.next(t))
	}
}
