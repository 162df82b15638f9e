package actor_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/actor/actortest"
)

// fn is a Behavior made of optional functions, for tests.
type fn struct {
	init      func(c *actor.Context) error
	receive   func(c *actor.Context, msg any)
	terminate func(c *actor.Context, reason error)
}

func (f *fn) Init(c *actor.Context) error {
	if f.init != nil {
		return f.init(c)
	}
	return nil
}

func (f *fn) Receive(c *actor.Context, msg any) {
	if f.receive != nil {
		f.receive(c, msg)
	}
}

func (f *fn) Terminate(c *actor.Context, reason error) {
	if f.terminate != nil {
		f.terminate(c, reason)
	}
}

func spawn(t testing.TB, s *actor.System, b actor.Behavior, opts ...actor.SpawnOption) actor.Ref {
	t.Helper()
	r, err := s.Spawn(b, opts...)
	require.NoError(t, err)
	return r
}

// inbox collects what an actor receives, for the test goroutine to read.
type inbox chan any

func (in inbox) Receive(_ *actor.Context, msg any) { in <- msg }

func (in inbox) next(t testing.TB) any {
	t.Helper()
	select {
	case m := <-in:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10s")
		return nil
	}
}

func waitExit(t testing.TB, r actor.Ref) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reason, err := actor.Wait(ctx, r)
	require.NoError(t, err)
	return reason
}

func TestSendOrderPerSender(t *testing.T) {
	s := actortest.NewSystem(t)
	const senders, each = 4, 2000
	got := make(chan [2]int, senders*each)
	r := spawn(t, s, actor.BehaviorFunc(func(_ *actor.Context, msg any) { got <- msg.([2]int) }))
	var wg sync.WaitGroup
	for id := range senders {
		wg.Go(func() {
			for i := range each {
				require.NoError(t, actor.Send(r, [2]int{id, i}))
			}
		})
	}
	wg.Wait()
	next := make([]int, senders)
	for range senders * each {
		m := <-got
		require.Equal(t, next[m[0]], m[1], "sender %d out of order", m[0])
		next[m[0]]++
	}
}

func TestCall(t *testing.T) {
	s := actortest.NewSystem(t)
	var later actor.From
	taken := make(chan struct{})
	r := spawn(t, s, actor.BehaviorFunc(func(c *actor.Context, msg any) {
		switch msg {
		case "echo":
			c.Reply("echo")
		case "fail":
			c.ReplyError(errors.New("no"))
		case "silent":
		case "later":
			later = c.From()
			close(taken)
		case "answer":
			require.True(t, later.Reply("at last"))
			require.False(t, later.Reply("twice"), "only the first reply counts")
			c.Reply("done")
		}
	}))
	ctx := context.Background()

	v, err := actor.Call(ctx, r, "echo")
	require.NoError(t, err)
	require.Equal(t, "echo", v)

	_, err = actor.Call(ctx, r, "fail")
	require.EqualError(t, err, "no")

	_, err = actor.Call(ctx, r, "silent")
	require.ErrorIs(t, err, actor.ErrNoReply)

	res := make(chan any, 1)
	go func() {
		v, err := actor.Call(ctx, r, "later")
		if err != nil {
			res <- err
			return
		}
		res <- v
	}()
	<-taken
	v, err = actor.Call(ctx, r, "answer")
	require.NoError(t, err)
	require.Equal(t, "done", v)
	require.Equal(t, "at last", <-res)
}

func TestCallTimeoutAndCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := actortest.NewSystem(t)
		r := spawn(t, s, actor.BehaviorFunc(func(c *actor.Context, _ any) { c.From() }))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		_, err := actor.Call(ctx, r, "hang")
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, time.Second, time.Since(start))

		cctx, ccancel := context.WithCancel(context.Background())
		ccancel()
		_, err = actor.Call(cctx, r, "hang")
		require.ErrorIs(t, err, context.Canceled)
	})
}

func TestCallToExitingActor(t *testing.T) {
	s := actortest.NewSystem(t)
	boom := errors.New("boom")
	taken := make(chan struct{})
	r := spawn(t, s, actor.BehaviorFunc(func(c *actor.Context, msg any) {
		if msg == "take" {
			c.From()
			close(taken)
			return
		}
		c.Stop(boom)
	}))
	res := make(chan error, 1)
	go func() {
		_, err := actor.Call(context.Background(), r, "take")
		res <- err
	}()
	<-taken
	require.NoError(t, actor.Send(r, "stop"))
	err := <-res
	var ee *actor.ExitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, r, ee.Actor)
	require.ErrorIs(t, err, boom)

	_, err = actor.Call(context.Background(), r, "again")
	require.ErrorIs(t, err, actor.ErrNoProc)
	require.ErrorIs(t, actor.Send(r, "again"), actor.ErrNoProc)
	_, err = actor.Call(context.Background(), actor.Ref{}, "x")
	require.ErrorIs(t, err, actor.ErrNoProc)
}

func TestPanicBecomesExitReason(t *testing.T) {
	s := actortest.NewSystem(t)
	r := spawn(t, s, actor.BehaviorFunc(func(*actor.Context, any) { panic("kaboom") }))
	_, err := actor.Call(context.Background(), r, "x")
	var pe *actor.PanicError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "kaboom", pe.Value)
	require.Contains(t, string(pe.Stack), "actor_test")
	reason := waitExit(t, r)
	require.ErrorAs(t, reason, &pe)
}

func TestLinksPropagateAbnormalExits(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name      string
		reason    error
		trap      bool
		wantDeath bool
		wantExit  bool // a trapping middle actor gets an Exit message
	}{
		{"abnormal kills", boom, false, true, false},
		{"normal does not", actor.Normal, false, false, false},
		{"shutdown kills", actor.Shutdown, false, true, false},
		{"abnormal trapped", boom, true, false, true},
		{"normal trapped", actor.Normal, true, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := actortest.NewSystem(t)
			exits := make(inbox, 4)
			// Chain: first - middle - last, linked at spawn.
			last := spawn(t, s, &fn{})
			middle := spawn(t, s, &fn{
				init: func(c *actor.Context) error { c.TrapExits(tt.trap); return nil },
				receive: func(_ *actor.Context, msg any) {
					if e, ok := msg.(actor.Exit); ok {
						exits <- e
					}
				},
			}, actor.LinkTo(last))
			first := spawn(t, s, actor.BehaviorFunc(func(c *actor.Context, _ any) { c.Stop(tt.reason) }), actor.LinkTo(middle))
			require.NoError(t, actor.Send(first, "die"))
			require.ErrorIs(t, waitExit(t, first), tt.reason)
			if tt.wantExit {
				e := exits.next(t).(actor.Exit)
				require.Equal(t, first, e.From)
				require.ErrorIs(t, e.Reason, tt.reason)
			}
			if tt.wantDeath {
				require.ErrorIs(t, waitExit(t, middle), tt.reason)
				require.ErrorIs(t, waitExit(t, last), tt.reason, "the exit travels the whole chain")
				return
			}
			// Still alive: both answer a system request.
			for _, r := range []actor.Ref{middle, last} {
				require.NoError(t, actor.Inspect(context.Background(), r, func(actor.Behavior) error { return nil }))
			}
		})
	}
}

func TestKillCannotBeTrapped(t *testing.T) {
	s := actortest.NewSystem(t)
	exits := make(inbox, 1)
	watcher := spawn(t, s, &fn{
		init:    func(c *actor.Context) error { c.TrapExits(true); return nil },
		receive: func(_ *actor.Context, msg any) { exits <- msg },
	})
	terminated := false
	victim := spawn(t, s, &fn{
		init:      func(c *actor.Context) error { c.TrapExits(true); return nil },
		terminate: func(*actor.Context, error) { terminated = true },
	}, actor.LinkTo(watcher))
	require.NoError(t, actor.Kill(victim))
	require.ErrorIs(t, waitExit(t, victim), actor.Killed)
	require.False(t, terminated, "no terminate hook after a kill")
	e := exits.next(t).(actor.Exit)
	require.Equal(t, victim, e.From)
	require.ErrorIs(t, e.Reason, actor.Killed, "a killed actor's exit signal is trappable")
}

func TestSendExit(t *testing.T) {
	s := actortest.NewSystem(t)
	boom := errors.New("boom")
	r := spawn(t, s, &fn{})
	require.NoError(t, actor.SendExit(r, actor.Normal))
	require.NoError(t, actor.Inspect(context.Background(), r, func(actor.Behavior) error { return nil }))
	require.NoError(t, actor.SendExit(r, boom))
	require.ErrorIs(t, waitExit(t, r), boom)
}

func TestLinkToDeadActor(t *testing.T) {
	s := actortest.NewSystem(t)
	dead := spawn(t, s, &fn{})
	require.NoError(t, actor.Stop(context.Background(), dead, nil))
	exits := make(inbox, 1)
	r := spawn(t, s, &fn{
		init: func(c *actor.Context) error { c.TrapExits(true); return nil },
		receive: func(c *actor.Context, msg any) {
			if msg == "link" {
				c.Link(dead)
				return
			}
			exits <- msg
		},
	})
	require.NoError(t, actor.Send(r, "link"))
	e := exits.next(t).(actor.Exit)
	require.ErrorIs(t, e.Reason, actor.ErrNoProc)
}

func TestUnlink(t *testing.T) {
	s := actortest.NewSystem(t)
	boom := errors.New("boom")
	other := spawn(t, s, actor.BehaviorFunc(func(c *actor.Context, _ any) { c.Stop(boom) }))
	r := spawn(t, s, actor.BehaviorFunc(func(c *actor.Context, msg any) {
		if msg == "unlink" {
			c.Unlink(other)
			c.Reply(nil)
		}
	}), actor.LinkTo(other))
	_, err := actor.Call(context.Background(), r, "unlink")
	require.NoError(t, err)
	require.NoError(t, actor.Send(other, "die"))
	require.ErrorIs(t, waitExit(t, other), boom)
	require.NoError(t, actor.Inspect(context.Background(), r, func(actor.Behavior) error { return nil }))
}

func TestMonitor(t *testing.T) {
	s := actortest.NewSystem(t)
	boom := errors.New("boom")
	target := spawn(t, s, actor.BehaviorFunc(func(c *actor.Context, _ any) { c.Stop(boom) }))
	downs := make(inbox, 4)
	var mons [2]actor.MonitorRef
	watcher := spawn(t, s, actor.BehaviorFunc(func(c *actor.Context, msg any) {
		switch m := msg.(type) {
		case actor.Ref:
			mons[0] = c.Monitor(m)
			if mons[1] == (actor.MonitorRef{}) {
				mons[1] = c.Monitor(m)
				c.Demonitor(mons[1])
			}
			c.Reply(nil)
		case actor.Down:
			downs <- m
		}
	}))
	_, err := actor.Call(context.Background(), watcher, target)
	require.NoError(t, err)
	require.NoError(t, actor.Send(target, "die"))
	d := downs.next(t).(actor.Down)
	require.Equal(t, mons[0], d.Monitor)
	require.Equal(t, target, d.Actor)
	require.ErrorIs(t, d.Reason, boom)

	// Monitoring a dead actor delivers Down at once, with ErrNoProc; and
	// the demonitored one never fired.
	_, err = actor.Call(context.Background(), watcher, target)
	require.NoError(t, err)
	d = downs.next(t).(actor.Down)
	require.Equal(t, mons[0], d.Monitor)
	require.ErrorIs(t, d.Reason, actor.ErrNoProc)
	require.Empty(t, downs)
}

func TestMonitorSeesPanic(t *testing.T) {
	s := actortest.NewSystem(t)
	target := spawn(t, s, actor.BehaviorFunc(func(*actor.Context, any) { panic(errors.New("bad state")) }))
	downs := make(inbox, 1)
	spawn(t, s, &fn{
		init:    func(c *actor.Context) error { c.Monitor(target); return nil },
		receive: func(_ *actor.Context, msg any) { downs <- msg },
	})
	require.NoError(t, actor.Send(target, "x"))
	d := downs.next(t).(actor.Down)
	var pe *actor.PanicError
	require.ErrorAs(t, d.Reason, &pe)
	require.EqualError(t, errors.Unwrap(pe), "bad state")
}

func TestSuspendResume(t *testing.T) {
	synctest.Test(t, testSuspendResume)
}

func testSuspendResume(t *testing.T) {
	s := actortest.NewSystem(t)
	ctx := context.Background()
	release, holding := make(chan struct{}), make(chan struct{})
	got := make(inbox, 100)
	r := spawn(t, s, actor.BehaviorFunc(func(_ *actor.Context, msg any) {
		if msg == 0 {
			close(holding)
			<-release
		}
		got <- msg
	}))
	for i := range 10 {
		require.NoError(t, actor.Send(r, i))
	}
	<-holding
	suspended := make(chan error, 1)
	go func() { suspended <- actor.Suspend(ctx, r) }()
	synctest.Wait() // Suspend is queued behind the message in hand
	close(release)  // the handler of message 0 returns; Suspend overtakes 1..9
	require.NoError(t, <-suspended)
	require.Equal(t, 0, got.next(t))
	for i := 10; i < 20; i++ {
		require.NoError(t, actor.Send(r, i), "sends go on while suspended")
	}
	require.NoError(t, actor.Inspect(ctx, r, func(actor.Behavior) error { return nil }), "system requests reach a suspended actor")
	require.Empty(t, got, "no user message is handled while suspended")
	require.NoError(t, actor.Resume(ctx, r))
	for i := 1; i < 20; i++ {
		require.Equal(t, i, got.next(t), "order kept across the suspension")
	}
}

type version struct {
	v   int
	out inbox
}

func (b *version) Receive(_ *actor.Context, msg any) { b.out <- [2]any{b.v, msg} }

func TestChangeCode(t *testing.T) {
	s := actortest.NewSystem(t)
	ctx := context.Background()
	out := make(inbox, 10)
	r := spawn(t, s, &version{v: 1, out: out})
	upgrade := func(old actor.Behavior) (actor.Behavior, error) {
		return &version{v: old.(*version).v + 1, out: out}, nil
	}
	require.ErrorIs(t, actor.ChangeCode(ctx, r, upgrade), actor.ErrNotSuspended)

	require.NoError(t, actor.Send(r, "a"))
	require.Equal(t, [2]any{1, "a"}, out.next(t))
	require.NoError(t, actor.Suspend(ctx, r))
	require.NoError(t, actor.Send(r, "b"))
	bad := errors.New("bad upgrade")
	require.ErrorIs(t, actor.ChangeCode(ctx, r, func(actor.Behavior) (actor.Behavior, error) { return nil, bad }), bad)
	var pe *actor.PanicError
	require.ErrorAs(t, actor.ChangeCode(ctx, r, func(actor.Behavior) (actor.Behavior, error) { panic("no") }), &pe)
	require.NoError(t, actor.ChangeCode(ctx, r, upgrade))
	require.NoError(t, actor.Resume(ctx, r))
	require.NoError(t, actor.Send(r, "c"))
	require.Equal(t, [2]any{2, "b"}, out.next(t), "a message queued during the change meets the new code")
	require.Equal(t, [2]any{2, "c"}, out.next(t))
}

func TestStopRunsTerminate(t *testing.T) {
	s := actortest.NewSystem(t)
	reasons := make(chan error, 1)
	r := spawn(t, s, &fn{terminate: func(_ *actor.Context, reason error) { reasons <- reason }})
	require.NoError(t, actor.Stop(context.Background(), r, nil))
	require.ErrorIs(t, <-reasons, actor.Normal)
	require.ErrorIs(t, actor.Stop(context.Background(), r, nil), actor.ErrNoProc)
	require.Equal(t, 0, s.Count())
}

func TestShutdownOrder(t *testing.T) {
	s := actor.NewSystem(actor.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	var mu sync.Mutex
	var order []int
	for i := range 5 {
		spawn(t, s, &fn{terminate: func(_ *actor.Context, reason error) {
			mu.Lock()
			defer mu.Unlock()
			require.ErrorIs(t, reason, actor.Shutdown)
			order = append(order, i)
		}})
	}
	require.NoError(t, s.Shutdown(context.Background()))
	require.Equal(t, []int{4, 3, 2, 1, 0}, order)
	_, err := s.Spawn(&fn{})
	require.ErrorIs(t, err, actor.ErrStopped)
	require.NoError(t, s.Shutdown(context.Background()), "a second Shutdown is harmless")
}

// Shutdown stops roots, newest first, and leaves an actor with a live
// parent to that parent: here p's exit ends d through the link, and c,
// which traps exits and outlives p, is a root in turn.
func TestShutdownStopsRootsFirst(t *testing.T) {
	s := actor.NewSystem(actor.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	var mu sync.Mutex
	var order []string
	record := func(name string) *fn {
		return &fn{terminate: func(_ *actor.Context, reason error) {
			mu.Lock()
			defer mu.Unlock()
			order = append(order, name+": "+reason.Error())
		}}
	}
	spawn(t, s, record("a"))
	p := spawn(t, s, record("p"))
	c := record("c")
	c.init = func(ctx *actor.Context) error { ctx.TrapExits(true); return nil }
	spawn(t, s, c, actor.LinkTo(p))
	spawn(t, s, record("d"), actor.LinkTo(p))
	spawn(t, s, record("e"))
	require.NoError(t, s.Shutdown(context.Background()))
	require.Equal(t, []string{"e: actor: shutdown", "p: actor: shutdown", "d: actor: shutdown", "c: actor: shutdown", "a: actor: shutdown"}, order)
}

func TestShutdownDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := actor.NewSystem(actor.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
		release := make(chan struct{})
		spawn(t, s, &fn{terminate: func(*actor.Context, error) { <-release }})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		require.ErrorIs(t, s.Shutdown(ctx), context.DeadlineExceeded)
		close(release)
		require.NoError(t, s.Shutdown(context.Background()))
	})
}

// A Shutdown cut short by its ctx leaves no goroutine behind once the
// killed actors have finished, without a second Shutdown: synctest.Test
// fails if a worker is still parked when the bubble ends.
func TestShutdownDeadlineReleasesWorkers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := actor.NewSystem(actor.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
		release := make(chan struct{})
		busy := make(chan struct{})
		stuck := spawn(t, s, actor.BehaviorFunc(func(*actor.Context, any) { close(busy); <-release }))
		idle := spawn(t, s, actor.BehaviorFunc(func(*actor.Context, any) {}))
		require.NoError(t, actor.Send(idle, "run"))
		require.NoError(t, actor.Send(stuck, "block"))
		<-busy
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		require.ErrorIs(t, s.Shutdown(ctx), context.DeadlineExceeded)
		close(release)
		reason, err := actor.Wait(context.Background(), stuck)
		require.NoError(t, err)
		require.ErrorIs(t, reason, actor.Killed, "killed once its message was handled")
		synctest.Wait()
	})
}

func TestInitFailure(t *testing.T) {
	s := actortest.NewSystem(t)
	bad := errors.New("no config")
	_, err := s.Spawn(&fn{init: func(*actor.Context) error { return bad }})
	require.ErrorIs(t, err, bad)
	var pe *actor.PanicError
	_, err = s.Spawn(&fn{init: func(*actor.Context) error { panic("init") }})
	require.ErrorAs(t, err, &pe)
	_, err = s.Spawn(&fn{init: func(c *actor.Context) error { c.Stop(bad); return nil }})
	require.ErrorIs(t, err, bad)
	require.Equal(t, 0, s.Count())

	// A parent linked at spawn hears nothing of a child that never started.
	exits := make(inbox, 1)
	parent := spawn(t, s, &fn{
		init:    func(c *actor.Context) error { c.TrapExits(true); return nil },
		receive: func(_ *actor.Context, msg any) { exits <- msg },
	})
	_, err = s.Spawn(&fn{init: func(*actor.Context) error { return bad }}, actor.LinkTo(parent))
	require.ErrorIs(t, err, bad)
	require.NoError(t, actor.Send(parent, "ping"))
	require.Equal(t, "ping", exits.next(t))
}

func TestMailboxBound(t *testing.T) {
	for _, tt := range []struct {
		policy actor.Overflow
		want   []int
	}{
		{actor.Reject, []int{0, 1, 2, 3}},
		{actor.DropOldest, []int{0, 3, 4, 5}},
	} {
		t.Run(map[actor.Overflow]string{actor.Reject: "reject", actor.DropOldest: "drop oldest"}[tt.policy], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var dead []any
				var mu sync.Mutex
				s := actortest.NewSystem(t, actor.WithDeadLetters(func(d actor.DeadLetter) {
					mu.Lock()
					defer mu.Unlock()
					require.ErrorIs(t, d.Reason, actor.ErrMailboxFull)
					dead = append(dead, d.Message)
				}))
				got := make(inbox, 10)
				release := make(chan struct{})
				// Let the handler go before the System's shutdown, even if
				// the test fails first (cleanups run last registered first).
				letGo := sync.OnceFunc(func() { close(release) })
				t.Cleanup(letGo)
				r := spawn(t, s, actor.BehaviorFunc(func(_ *actor.Context, msg any) {
					if msg == 0 {
						<-release
					}
					got <- msg
				}), actor.WithMailbox(3, tt.policy))
				require.NoError(t, actor.Send(r, 0))
				synctest.Wait() // the handler holds 0: it no longer counts
				for i := 1; i <= 3; i++ {
					require.NoError(t, actor.Send(r, i))
				}
				err := actor.Send(r, 4)
				err5 := actor.Send(r, 5)
				if tt.policy == actor.Reject {
					require.ErrorIs(t, err, actor.ErrMailboxFull)
					require.ErrorIs(t, err5, actor.ErrMailboxFull)
				} else {
					require.NoError(t, err)
					require.NoError(t, err5)
				}
				letGo()
				for _, w := range tt.want {
					require.Equal(t, w, got.next(t))
				}
				mu.Lock()
				defer mu.Unlock()
				require.Len(t, dead, 2)
			})
		})
	}
}

func TestDeadLetters(t *testing.T) {
	var letters []actor.DeadLetter
	var mu sync.Mutex
	s := actortest.NewSystem(t, actor.WithDeadLetters(func(d actor.DeadLetter) {
		mu.Lock()
		defer mu.Unlock()
		letters = append(letters, d)
	}))
	r := spawn(t, s, &fn{})
	require.NoError(t, actor.Stop(context.Background(), r, nil))
	require.ErrorIs(t, actor.Send(r, "late"), actor.ErrNoProc)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []actor.DeadLetter{{To: r, Message: "late", Reason: actor.ErrNoProc}}, letters)
}

func TestRegistry(t *testing.T) {
	s := actortest.NewSystem(t)
	r := spawn(t, s, &fn{}, actor.WithName("switch"))
	got, ok := s.Whereis("switch")
	require.True(t, ok)
	require.Equal(t, r, got)
	_, err := s.Spawn(&fn{}, actor.WithName("switch"))
	require.ErrorIs(t, err, actor.ErrNameTaken)

	other := spawn(t, s, &fn{})
	require.ErrorIs(t, s.Register("switch", other), actor.ErrNameTaken)
	require.NoError(t, s.Register("other", other))
	s.Unregister("other")
	_, ok = s.Whereis("other")
	require.False(t, ok)

	require.NoError(t, actor.Stop(context.Background(), r, nil))
	_, ok = s.Whereis("switch")
	require.False(t, ok, "a name is released when its actor exits")
	require.ErrorIs(t, s.Register("switch", r), actor.ErrNoProc)
	require.NoError(t, s.Register("switch", other))
}

func TestTimers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := actortest.NewSystem(t)
		got := make(inbox, 10)
		var cancelMe *actor.Timer
		start := time.Now()
		r := spawn(t, s, &fn{
			init: func(c *actor.Context) error {
				c.SendAfter(c.Self(), 2*time.Second, "two")
				cancelMe = c.SendAfter(c.Self(), time.Second, "never")
				c.SendAfter(c.Self(), 3*time.Second, "three")
				return nil
			},
			receive: func(c *actor.Context, msg any) {
				if msg == "cancel" {
					c.Reply(cancelMe.Stop())
					return
				}
				got <- [2]any{msg, time.Since(start)}
			},
		})
		v, err := actor.Call(context.Background(), r, "cancel")
		require.NoError(t, err)
		require.Equal(t, true, v)
		require.False(t, cancelMe.Stop(), "a stopped timer stops once")
		require.Equal(t, [2]any{"two", 2 * time.Second}, got.next(t))
		require.Equal(t, [2]any{"three", 3 * time.Second}, got.next(t))
		synctest.Wait()
		require.Empty(t, got)
	})
}

func TestTimersCancelledOnExit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := actortest.NewSystem(t)
		got := make(inbox, 1)
		sink := spawn(t, s, got)
		r := spawn(t, s, &fn{init: func(c *actor.Context) error {
			c.SendAfter(sink, time.Second, "from the dead")
			return nil
		}})
		require.NoError(t, actor.Stop(context.Background(), r, nil))
		time.Sleep(2 * time.Second) // fake time in the bubble
		synctest.Wait()
		require.Empty(t, got)
	})
}

func TestIdleActorsHoldNoGoroutine(t *testing.T) {
	s := actortest.NewSystem(t)
	before := runtime.NumGoroutine()
	refs := make([]actor.Ref, 1000)
	for i := range refs {
		refs[i] = spawn(t, s, &fn{})
	}
	require.LessOrEqual(t, runtime.NumGoroutine(), before, "spawning starts no goroutine")
	require.Equal(t, 1000, s.Count())
}

func TestBusyActorDoesNotStarveOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := actortest.NewSystem(t, actor.WithIdleWorkers(0))
		// A self-feeding actor never empties its mailbox; another actor
		// must still be served.
		busy := spawn(t, s, actor.BehaviorFunc(func(c *actor.Context, msg any) {
			if msg != "stop" {
				_ = actor.Send(c.Self(), msg)
			}
		}))
		require.NoError(t, actor.Send(busy, "spin"))
		v, err := actor.Call(context.Background(), spawn(t, s, actor.BehaviorFunc(func(c *actor.Context, msg any) { c.Reply(msg) })), "hello")
		require.NoError(t, err)
		require.Equal(t, "hello", v)
		require.NoError(t, actor.Stop(context.Background(), busy, nil))
	})
}
