package actor_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/actor/actortest"
)

// goid is the running goroutine's number, read from its stack header.
func goid(t testing.TB) uint64 {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	f := bytes.Fields(buf)
	require.GreaterOrEqual(t, len(f), 2)
	id, err := strconv.ParseUint(string(f[1]), 10, 64)
	require.NoError(t, err)
	return id
}

// A Call whose ctx cannot end, to an idle actor, runs its handler on the
// caller's goroutine; one whose ctx can end goes through the mailbox to a
// worker, so that the caller can give up when ctx ends.
func TestCallOnIdleActorRunsOnCallersGoroutine(t *testing.T) {
	s := actortest.NewSystem(t)
	r := spawn(t, s, actor.BehaviorFunc(func(c *actor.Context, msg any) { c.Reply(goid(t)) }))
	me := goid(t)

	v, err := actor.Call(context.Background(), r, "where")
	require.NoError(t, err)
	require.Equal(t, me, v, "Background: on the caller's goroutine")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v, err = actor.Call(ctx, r, "where")
	require.NoError(t, err)
	require.NotEqual(t, me, v, "cancellable ctx: on a worker")
}

// Calls run on callers' goroutines and Sends handled by workers never
// overlap, and each sender's messages arrive in the order sent, a Call
// never overtaking the sender's Sends still queued before it.
func TestInlineCallExclusiveAndOrdered(t *testing.T) {
	type msg struct{ from, seq int }
	const senders, each = 4, 2000
	s := actortest.NewSystem(t)
	var inside atomic.Int32
	var overlaps, disorder atomic.Int32
	last := make([]int, senders) // touched only by the actor's handler
	for i := range last {
		last[i] = -1
	}
	handled := 0
	r := spawn(t, s, actor.BehaviorFunc(func(c *actor.Context, m any) {
		if inside.Add(1) != 1 {
			overlaps.Add(1)
		}
		defer inside.Add(-1)
		switch m := m.(type) {
		case msg:
			if m.seq != last[m.from]+1 {
				disorder.Add(1)
			}
			last[m.from] = m.seq
			handled++
			c.Reply(m.seq)
		case string: // "count"
			c.Reply(handled)
		}
	}))
	var wg sync.WaitGroup
	for from := range senders {
		wg.Go(func() {
			for seq := range each {
				m := msg{from, seq}
				if seq%3 == 0 {
					v, err := actor.Call(context.Background(), r, m)
					if err != nil || v != seq {
						t.Errorf("sender %d: Call %d = %v, %v", from, seq, v, err)
						return
					}
					continue
				}
				if err := actor.Send(r, m); err != nil {
					t.Errorf("sender %d: Send %d: %v", from, seq, err)
					return
				}
			}
		})
	}
	wg.Wait()
	v, err := actor.Call(context.Background(), r, "count")
	require.NoError(t, err)
	require.Equal(t, senders*each, v)
	require.Zero(t, overlaps.Load(), "handlers overlapped")
	require.Zero(t, disorder.Load(), "a sender's messages arrived out of order")
}

// Messages and system requests that arrive while a call runs on its
// caller's goroutine wait for it, and are then handled by a worker.
func TestInlineCallQueuesWhatArrivesMeanwhile(t *testing.T) {
	s := actortest.NewSystem(t)
	entered, release := make(chan struct{}), make(chan struct{})
	got := make(inbox, 8)
	r := spawn(t, s, actor.BehaviorFunc(func(c *actor.Context, msg any) {
		if msg == "block" {
			close(entered)
			<-release
			c.Reply("done")
			return
		}
		got <- msg
	}))
	called := make(chan error, 1)
	go func() {
		_, err := actor.Call(context.Background(), r, "block")
		called <- err
	}()
	<-entered
	require.NoError(t, actor.Send(r, "after"))
	suspended := make(chan error, 1)
	go func() { suspended <- actor.Suspend(context.Background(), r) }()
	select {
	case <-suspended:
		t.Fatal("Suspend returned while a handler ran")
	case <-got:
		t.Fatal("a message was handled while a handler ran")
	default:
	}
	close(release)
	require.NoError(t, <-called)
	require.NoError(t, <-suspended)
	// The Send came before the Suspend: it was handled first, or it waits
	// for Resume; either way exactly once, after the call.
	require.NoError(t, actor.Resume(context.Background(), r))
	require.Equal(t, "after", got.next(t))
	require.Zero(t, len(got))
}

// A panic in a handler run on the caller's goroutine is the actor's exit:
// the caller gets an *ExitError, the terminate hook runs, links and
// monitors hear of it.
func TestInlineCallPanicIsTheActorsExit(t *testing.T) {
	s := actortest.NewSystem(t)
	linked := actortest.NewProbe(t, s)
	linked.TrapExits()
	terminated := make(chan error, 1)
	r := spawn(t, s, &fn{
		receive:   func(*actor.Context, any) { panic("boom") },
		terminate: func(_ *actor.Context, reason error) { terminated <- reason },
	}, actor.LinkTo(linked.Ref()))
	watcher := make(inbox, 1)
	w := spawn(t, s, actor.BehaviorFunc(func(c *actor.Context, msg any) {
		if m, ok := msg.(monitorCmd); ok {
			c.Monitor(m.r)
			c.Reply(nil)
			return
		}
		watcher <- msg
	}))
	_, err := actor.Call(context.Background(), w, monitorCmd{r}) // w monitors r
	require.NoError(t, err)

	_, err = actor.Call(context.Background(), r, "go")
	var ee *actor.ExitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, r, ee.Actor)
	var pe *actor.PanicError
	require.ErrorAs(t, ee.Reason, &pe)
	require.Equal(t, "boom", pe.Value)

	require.ErrorAs(t, <-terminated, &pe)
	ex, ok := linked.Next().(actor.Exit)
	require.True(t, ok)
	require.Equal(t, r, ex.From)
	require.ErrorAs(t, ex.Reason, &pe)
	down, ok := watcher.next(t).(actor.Down)
	require.True(t, ok)
	require.Equal(t, r, down.Actor)
	require.ErrorAs(t, down.Reason, &pe)
	reason, err := actor.Wait(context.Background(), r)
	require.NoError(t, err)
	require.ErrorAs(t, reason, &pe)
	_, err = actor.Call(context.Background(), r, "again")
	require.ErrorIs(t, err, actor.ErrNoProc)
}

// monitorCmd asks the watcher of TestInlineCallPanicIsTheActorsExit to
// monitor an actor.
type monitorCmd struct{ r actor.Ref }

// A handler that replies and stops, and one that takes its From and
// answers from another goroutine, behave as on a worker.
func TestInlineCallReplyStopAndFrom(t *testing.T) {
	s := actortest.NewSystem(t)
	later := make(chan actor.From, 1)
	r := spawn(t, s, actor.BehaviorFunc(func(c *actor.Context, msg any) {
		switch msg {
		case "later":
			later <- c.From()
		case "stop":
			c.Reply("bye")
			c.Stop(nil)
		case "silent":
		}
	}))
	go func() {
		f := <-later
		f.Reply("answered")
	}()
	v, err := actor.Call(context.Background(), r, "later")
	require.NoError(t, err)
	require.Equal(t, "answered", v)

	_, err = actor.Call(context.Background(), r, "silent")
	require.ErrorIs(t, err, actor.ErrNoReply)

	v, err = actor.Call(context.Background(), r, "stop")
	require.NoError(t, err)
	require.Equal(t, "bye", v)
	reason, err := actor.Wait(context.Background(), r)
	require.NoError(t, err)
	require.ErrorIs(t, reason, actor.Normal)
}

// A → B → A, and A → A: the nested call to an actor that is handling a call
// on the same goroutine queues and waits, as it did on workers, and ends
// with its ctx; nothing else is blocked, and A handles the abandoned call
// afterwards.
func TestInlineNestedCallsDoNotDeadlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := actortest.NewSystem(t)
		var a, b actor.Ref
		var handledByA atomic.Int32
		a = spawn(t, s, actor.BehaviorFunc(func(c *actor.Context, msg any) {
			handledByA.Add(1)
			switch msg {
			case "via-b":
				v, err := actor.Call(context.Background(), b, "to-a")
				c.Reply([]any{v, err})
			case "self":
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				_, err := actor.Call(ctx, c.Self(), "ping")
				c.Reply(err)
			default:
				c.Reply("pong")
			}
		}))
		b = spawn(t, s, actor.BehaviorFunc(func(c *actor.Context, msg any) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, err := actor.Call(ctx, a, "ping")
			c.Reply(err)
		}))

		v, err := actor.Call(context.Background(), a, "via-b")
		require.NoError(t, err)
		got := v.([]any)
		require.NoError(t, asError(got[1]))
		require.ErrorIs(t, asError(got[0]), context.DeadlineExceeded)

		v, err = actor.Call(context.Background(), a, "self")
		require.NoError(t, err)
		require.ErrorIs(t, asError(v), context.DeadlineExceeded)

		synctest.Wait() // A handles the two abandoned pings
		v, err = actor.Call(context.Background(), a, "ping")
		require.NoError(t, err)
		require.Equal(t, "pong", v)
		require.EqualValues(t, 5, handledByA.Load())
	})
}

func asError(v any) error {
	err, _ := v.(error)
	return err
}

// An exit signal that ends a linked actor, which in turn signals an idle
// actor that traps exits: the chain runs on the exiting actor's worker and
// each exit is heard once, in order.
func TestExitSignalChainReachesIdleTrapper(t *testing.T) {
	s := actortest.NewSystem(t)
	top := actortest.NewProbe(t, s)
	top.TrapExits()
	boom := errors.New("boom")
	mid := spawn(t, s, actor.BehaviorFunc(func(*actor.Context, any) {}), actor.LinkTo(top.Ref()))
	leaf := spawn(t, s, actor.BehaviorFunc(func(c *actor.Context, _ any) { c.Stop(boom) }), actor.LinkTo(mid))
	require.NoError(t, actor.Send(leaf, "die"))
	ex, ok := top.Next().(actor.Exit)
	require.True(t, ok)
	require.Equal(t, mid, ex.From)
	require.ErrorIs(t, ex.Reason, boom)
	for _, r := range []actor.Ref{leaf, mid} {
		reason, err := actor.Wait(context.Background(), r)
		require.NoError(t, err)
		require.ErrorIs(t, reason, boom)
	}
	require.Zero(t, top.Len())
}
