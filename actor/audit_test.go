package actor_test

// The audit against Erlang/OTP's process semantics: one test per behaviour,
// each named in doc/actor.md ("Checked against OTP") with the OTP rule it
// checks. The behaviours that other tests of this package already check
// are mapped to those tests there.

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

// alive reports whether r still answers a system request.
func alive(t testing.TB, r actor.Ref) bool {
	t.Helper()
	err := actor.Inspect(context.Background(), r, func(actor.Behavior) error { return nil })
	if err != nil {
		require.ErrorIs(t, err, actor.ErrNoProc)
		return false
	}
	return true
}

// linker is a Behavior that links, unlinks, monitors and demonitors as its
// messages say, and reports everything else it gets.
type linker struct {
	trap bool
	got  inbox
	mons map[actor.Ref][]actor.MonitorRef
}

type (
	linkTo     struct{ r actor.Ref }
	unlinkFrom struct{ r actor.Ref }
	monitor    struct{ r actor.Ref }
	demonitor  struct{ m actor.MonitorRef }
	stopWith   struct{ reason error }
	sendExitTo struct {
		r      actor.Ref
		reason error
	}
	sendTo struct {
		r   actor.Ref
		msg any
	}
	monitorsOf struct{ r actor.Ref }
)

func (l *linker) Init(c *actor.Context) error { c.TrapExits(l.trap); return nil }

func (l *linker) Receive(c *actor.Context, msg any) {
	switch m := msg.(type) {
	case linkTo:
		c.Link(m.r)
	case unlinkFrom:
		c.Unlink(m.r)
	case monitor:
		if l.mons == nil {
			l.mons = map[actor.Ref][]actor.MonitorRef{}
		}
		l.mons[m.r] = append(l.mons[m.r], c.Monitor(m.r))
	case demonitor:
		c.Demonitor(m.m)
	case monitorsOf:
		c.Reply(append([]actor.MonitorRef(nil), l.mons[m.r]...))
		return
	case stopWith:
		c.Stop(m.reason)
	case sendExitTo:
		_ = actor.SendExit(m.r, m.reason)
	case sendTo:
		_ = actor.Send(m.r, m.msg)
	default:
		if l.got != nil {
			l.got <- msg
		}
	}
	c.Reply(nil)
}

func do(t testing.TB, r actor.Ref, msg any) {
	t.Helper()
	_, err := actor.Call(context.Background(), r, msg)
	require.NoError(t, err)
}

// OTP: a link is bidirectional: either side's abnormal exit reaches the
// other.
func TestAuditLinkIsBidirectional(t *testing.T) {
	boom := errors.New("boom")
	for _, dying := range []string{"the linker", "the linked"} {
		t.Run(dying, func(t *testing.T) {
			s := actortest.NewSystem(t)
			a := spawn(t, s, &linker{})
			b := spawn(t, s, &linker{})
			do(t, a, linkTo{b})
			first, other := a, b
			if dying == "the linked" {
				first, other = b, a
			}
			require.NoError(t, actor.Send(first, stopWith{boom}))
			require.ErrorIs(t, waitExit(t, first), boom)
			require.ErrorIs(t, waitExit(t, other), boom, "the other side dies with the same reason")
		})
	}
}

// OTP: there is at most one link between two processes; linking again does
// nothing, and one unlink removes it.
func TestAuditLinkIsIdempotent(t *testing.T) {
	boom := errors.New("boom")
	s := actortest.NewSystem(t)
	a := spawn(t, s, &linker{})
	b := spawn(t, s, &linker{})
	do(t, a, linkTo{b})
	do(t, a, linkTo{b})
	do(t, b, linkTo{a})
	do(t, a, unlinkFrom{b})
	require.NoError(t, actor.Send(b, stopWith{boom}))
	require.ErrorIs(t, waitExit(t, b), boom)
	require.True(t, alive(t, a), "one unlink removed the link made three times")
}

// OTP: once unlink has returned, the link has no effect on the caller, even
// if the other side's exit signal was already on its way: a signal due to a
// link that no longer exists is ignored.
// OTP: an exit signal and a message from one sender arrive in the order
// sent; for an actor that traps exits the signal is a message, so an
// exit(Pid, Reason) followed by Pid ! Msg gives {'EXIT', ...} first.
// OTP: an exiting process's messages sent before it exited arrive before
// its exit signal and before the DOWN of a monitor on it.
func TestAuditMessagesBeforeExitComeFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("boom")
		s := actortest.NewSystem(t)
		got := make(inbox, 8)
		ctx := context.Background()
		w := spawn(t, s, &linker{trap: true, got: got})
		x := spawn(t, s, &linker{})
		do(t, x, linkTo{w})
		do(t, w, monitor{x})
		require.NoError(t, actor.Suspend(ctx, w)) // all of it waits in w's mailbox
		require.NoError(t, actor.Send(x, sendTo{w, 1}))
		require.NoError(t, actor.Send(x, sendTo{w, 2}))
		require.NoError(t, actor.Send(x, stopWith{boom}))
		require.ErrorIs(t, waitExit(t, x), boom)
		synctest.Wait()
		require.NoError(t, actor.Resume(ctx, w))
		require.Equal(t, 1, got.next(t))
		require.Equal(t, 2, got.next(t))
		var sawExit, sawDown bool
		for range 2 {
			switch m := got.next(t).(type) {
			case actor.Exit:
				require.Equal(t, x, m.From)
				require.ErrorIs(t, m.Reason, boom)
				sawExit = true
			case actor.Down:
				require.Equal(t, x, m.Actor)
				require.ErrorIs(t, m.Reason, boom)
				sawDown = true
			default:
				t.Fatalf("unexpected %#v", m)
			}
		}
		require.True(t, sawExit && sawDown)
	})
}

// OTP: link to a process that does not exist: a process that traps exits
// gets {'EXIT', Pid, noproc}; one that does not fails with noproc (here:
// exits with ErrNoProc once the handler returns, Go having no exceptions).
func TestAuditLinkToDeadActorNotTrapping(t *testing.T) {
	s := actortest.NewSystem(t)
	dead := spawn(t, s, &fn{})
	require.NoError(t, actor.Stop(context.Background(), dead, nil))
	r := spawn(t, s, &linker{})
	require.NoError(t, actor.Send(r, linkTo{dead}))
	require.ErrorIs(t, waitExit(t, r), actor.ErrNoProc)
}

// OTP: monitors are one-way and stack: two monitors give two DOWNs, each
// with its own reference; the watched actor hears nothing of its watcher's
// exit.
func TestAuditMonitorsAreOneWayAndStack(t *testing.T) {
	boom := errors.New("boom")
	s := actortest.NewSystem(t)
	targetGot := make(inbox, 2)
	target := spawn(t, s, &linker{trap: true, got: targetGot})
	other := spawn(t, s, &linker{})
	got := make(inbox, 4)
	w := spawn(t, s, &linker{got: got})
	do(t, w, monitor{target})
	do(t, w, monitor{target})
	do(t, w, monitor{other})
	require.NoError(t, actor.Send(w, stopWith{boom}))
	require.ErrorIs(t, waitExit(t, w), boom)
	do(t, target, "ping")
	require.Equal(t, "ping", targetGot.next(t), "no Exit, no Down: the watcher was not linked")

	got = make(inbox, 4)
	w = spawn(t, s, &linker{got: got})
	do(t, w, monitor{target})
	do(t, w, monitor{target})
	v, err := actor.Call(context.Background(), w, monitorsOf{target})
	require.NoError(t, err)
	mons := v.([]actor.MonitorRef)
	require.Len(t, mons, 2)
	require.NotEqual(t, mons[0], mons[1])
	require.NoError(t, actor.Send(target, stopWith{boom}))
	seen := map[actor.MonitorRef]bool{}
	for range 2 {
		d := got.next(t).(actor.Down)
		require.ErrorIs(t, d.Reason, boom)
		seen[d.Monitor] = true
	}
	require.Equal(t, map[actor.MonitorRef]bool{mons[0]: true, mons[1]: true}, seen, "one Down per monitor")
	do(t, w, "after")
	require.Equal(t, "after", got.next(t), "and no more")
}

// OTP: demonitor(Ref) only turns off a monitor the caller set; another
// process's reference does nothing to it.
// OTP: Stop from outside (proc_lib:stop, sys:terminate) ends the actor with
// the reason given, its terminate hook runs with it, and its links see it.
func TestAuditStopFromOutsideReasonReachesLinks(t *testing.T) {
	boom := errors.New("boom")
	s := actortest.NewSystem(t)
	got := make(inbox, 2)
	w := spawn(t, s, &linker{trap: true, got: got})
	terminated := make(chan error, 2)
	r := spawn(t, s, &fn{terminate: func(_ *actor.Context, reason error) { terminated <- reason }}, actor.LinkTo(w))
	require.NoError(t, actor.Stop(context.Background(), r, boom))
	require.ErrorIs(t, <-terminated, boom)
	e := got.next(t).(actor.Exit)
	require.Equal(t, r, e.From)
	require.ErrorIs(t, e.Reason, boom)
}

// OTP (gen_server init returning {stop, Reason}): the process exits with
// the reason, so what it linked to during init (a child it spawned) gets
// the exit signal; here the parent of the spawn is spared on purpose (the
// error is Spawn's), but the links made in Init are not.
// OTP: terminate runs once, with the reason, on every way out of a
// behaviour that has one, except a kill.
func TestAuditTerminateOnceOnEveryWayOut(t *testing.T) {
	boom := errors.New("boom")
	moved := fmt.Errorf("handed over: %w", actor.Moved)
	type way struct {
		name   string
		trap   bool
		end    func(t *testing.T, s *actor.System, r actor.Ref)
		reason func(t *testing.T, reason error)
		hook   bool
	}
	is := func(want error) func(*testing.T, error) {
		return func(t *testing.T, got error) { require.ErrorIs(t, got, want) }
	}
	ways := []way{
		{"context stop", false, func(t *testing.T, _ *actor.System, r actor.Ref) {
			require.NoError(t, actor.Send(r, stopWith{boom}))
		}, is(boom), true},
		{"stop from outside", false, func(t *testing.T, _ *actor.System, r actor.Ref) {
			require.NoError(t, actor.Stop(context.Background(), r, boom))
		}, is(boom), true},
		{"panic", false, func(t *testing.T, _ *actor.System, r actor.Ref) {
			require.NoError(t, actor.Send(r, "panic"))
		}, func(t *testing.T, reason error) {
			var pe *actor.PanicError
			require.ErrorAs(t, reason, &pe)
			require.Equal(t, "in handler", pe.Value)
		}, true},
		{"linked exit, not trapping", false, func(t *testing.T, s *actor.System, r actor.Ref) {
			x := spawn(t, s, &linker{}, actor.LinkTo(r))
			require.NoError(t, actor.Send(x, stopWith{boom}))
		}, is(boom), true},
		{"exit signal, not trapping", false, func(t *testing.T, _ *actor.System, r actor.Ref) {
			require.NoError(t, actor.SendExit(r, boom))
		}, is(boom), true},
		{"stop while trapping", true, func(t *testing.T, _ *actor.System, r actor.Ref) {
			require.NoError(t, actor.Stop(context.Background(), r, actor.Shutdown))
		}, is(actor.Shutdown), true},
		{"kill", true, func(t *testing.T, _ *actor.System, r actor.Ref) {
			require.NoError(t, actor.Kill(r))
		}, is(actor.Killed), false},
		// OTP: only the kill signal is untrappable and skips terminate; a
		// process that dies of a linked process's `killed` (or is sent
		// `killed` by exit/2) exits as of any other reason.
		{"linked actor killed, not trapping", false, func(t *testing.T, s *actor.System, r actor.Ref) {
			x := spawn(t, s, &linker{}, actor.LinkTo(r))
			require.NoError(t, actor.Kill(x))
		}, is(actor.Killed), true},
		{"exit signal killed, not trapping", false, func(t *testing.T, _ *actor.System, r actor.Ref) {
			require.NoError(t, actor.SendExit(r, actor.Killed))
		}, is(actor.Killed), true},
		{"stop from outside with killed", false, func(t *testing.T, _ *actor.System, r actor.Ref) {
			require.NoError(t, actor.Stop(context.Background(), r, actor.Killed))
		}, is(actor.Killed), true},
		// (Hotline's) an actor stopped with Moved (from outside, or by
		// itself) goes on elsewhere: it has not ended, and its hook does
		// not run. One that dies of a linked actor's Moved has ended.
		{"stop from outside, moved", false, func(t *testing.T, _ *actor.System, r actor.Ref) {
			require.NoError(t, actor.Stop(context.Background(), r, moved))
		}, is(actor.Moved), false},
		{"context stop, moved", false, func(t *testing.T, _ *actor.System, r actor.Ref) {
			require.NoError(t, actor.Send(r, stopWith{moved}))
		}, is(actor.Moved), false},
		{"linked actor moved, not trapping", false, func(t *testing.T, s *actor.System, r actor.Ref) {
			x := spawn(t, s, &linker{}, actor.LinkTo(r))
			require.NoError(t, actor.Stop(context.Background(), x, moved))
		}, is(actor.Moved), true},
		{"exit signal moved, not trapping", false, func(t *testing.T, _ *actor.System, r actor.Ref) {
			require.NoError(t, actor.SendExit(r, moved))
		}, is(actor.Moved), true},
	}
	for _, w := range ways {
		t.Run(w.name, func(t *testing.T) {
			s := actortest.NewSystem(t)
			hooks := make(chan error, 4)
			r := spawn(t, s, &fn{
				init: func(c *actor.Context) error { c.TrapExits(w.trap); return nil },
				receive: func(c *actor.Context, msg any) {
					switch m := msg.(type) {
					case stopWith:
						c.Stop(m.reason)
					case string:
						panic("in handler")
					}
				},
				terminate: func(_ *actor.Context, reason error) { hooks <- reason },
			})
			w.end(t, s, r)
			reason := waitExit(t, r)
			w.reason(t, reason)
			close(hooks)
			var ran []error
			for h := range hooks {
				ran = append(ran, h)
			}
			if !w.hook {
				require.Empty(t, ran, "no terminate hook")
				return
			}
			require.Equal(t, []error{reason}, ran, "the hook ran once, with the exit reason")
		})
	}
}

func TestAuditUnlinkDropsExitSignalInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("boom")
		s := actortest.NewSystem(t)
		release := make(chan struct{})
		var other actor.Ref
		r := spawn(t, s, actor.BehaviorFunc(func(c *actor.Context, msg any) {
			if msg == "unlink later" {
				<-release
				c.Unlink(other)
			}
		}))
		other = spawn(t, s, actor.BehaviorFunc(func(c *actor.Context, _ any) { c.Stop(boom) }), actor.LinkTo(r))
		require.NoError(t, actor.Send(r, "unlink later"))
		synctest.Wait() // r's handler is blocked
		require.NoError(t, actor.Send(other, "die"))
		require.ErrorIs(t, waitExit(t, other), boom) // its signal waits for r
		close(release)
		require.True(t, alive(t, r), "the unlink came first: the signal of the gone link is ignored")
	})
}

func TestAuditTrappedExitSignalKeepsSenderOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("boom")
		s := actortest.NewSystem(t)
		got := make(inbox, 4)
		release := make(chan struct{})
		r := spawn(t, s, &fn{
			init: func(c *actor.Context) error { c.TrapExits(true); return nil },
			receive: func(_ *actor.Context, msg any) {
				if msg == "block" {
					<-release
					return
				}
				got <- msg
			},
		})
		sender := spawn(t, s, &linker{})
		require.NoError(t, actor.Send(r, "block"))
		synctest.Wait()
		require.NoError(t, actor.Send(sender, sendTo{r, "before"}))
		require.NoError(t, actor.Send(sender, sendExitTo{r, boom}))
		require.NoError(t, actor.Send(sender, sendTo{r, "after"}))
		synctest.Wait() // all three are in r's mailbox
		close(release)
		require.Equal(t, "before", got.next(t))
		e, ok := got.next(t).(actor.Exit)
		require.True(t, ok, "the Exit comes between the two messages")
		require.ErrorIs(t, e.Reason, boom)
		require.Equal(t, "after", got.next(t))
	})
}

func TestAuditDemonitorOfAnotherActorsMonitor(t *testing.T) {
	boom := errors.New("boom")
	s := actortest.NewSystem(t)
	target := spawn(t, s, &linker{})
	got := make(inbox, 2)
	w := spawn(t, s, &linker{got: got})
	do(t, w, monitor{target})
	v, err := actor.Call(context.Background(), w, monitorsOf{target})
	require.NoError(t, err)
	m := v.([]actor.MonitorRef)[0]
	meddler := spawn(t, s, &linker{})
	do(t, meddler, demonitor{m})
	require.NoError(t, actor.Send(target, stopWith{boom}))
	d := got.next(t).(actor.Down)
	require.Equal(t, m, d.Monitor, "the watcher's monitor still fired")
}

// A trapping actor's Exit messages and a watcher's Down messages stand for
// signals, which OTP never drops: a full bounded mailbox does not refuse
// them.
func TestAuditSignalsNotLostToFullMailbox(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("boom")
		s := actortest.NewSystem(t)
		got := make(inbox, 8)
		release := make(chan struct{})
		watched := spawn(t, s, &linker{})
		r := spawn(t, s, &fn{
			init: func(c *actor.Context) error {
				c.TrapExits(true)
				c.Monitor(watched)
				return nil
			},
			receive: func(_ *actor.Context, msg any) {
				if msg == "block" {
					<-release
					return
				}
				got <- msg
			},
		}, actor.WithMailbox(1, actor.Reject))
		linked := spawn(t, s, &linker{}, actor.LinkTo(r))
		require.NoError(t, actor.Send(r, "block"))
		synctest.Wait()
		require.NoError(t, actor.Send(r, "fills it"))
		require.ErrorIs(t, actor.Send(r, "one too many"), actor.ErrMailboxFull)
		require.NoError(t, actor.Send(linked, stopWith{boom}))
		require.NoError(t, actor.Send(watched, stopWith{boom}))
		require.ErrorIs(t, waitExit(t, linked), boom)
		require.ErrorIs(t, waitExit(t, watched), boom)
		synctest.Wait()
		close(release)
		require.Equal(t, "fills it", got.next(t))
		var sawExit, sawDown bool
		for range 2 {
			switch m := got.next(t).(type) {
			case actor.Exit:
				require.Equal(t, linked, m.From)
				sawExit = true
			case actor.Down:
				require.Equal(t, watched, m.Actor)
				sawDown = true
			default:
				t.Fatalf("unexpected %#v", m)
			}
		}
		require.True(t, sawExit && sawDown, "neither signal was lost")
	})
}

// Nor does a DropOldest bound drop them for newer messages: it drops the
// oldest user message instead.
func TestAuditDownNotDroppedByDropOldest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := actortest.NewSystem(t)
		got := make(inbox, 8)
		release := make(chan struct{})
		watched := spawn(t, s, &linker{})
		r := spawn(t, s, &fn{
			init: func(c *actor.Context) error { c.Monitor(watched); return nil },
			receive: func(_ *actor.Context, msg any) {
				if msg == "block" {
					<-release
					return
				}
				got <- msg
			},
		}, actor.WithMailbox(1, actor.DropOldest))
		require.NoError(t, actor.Send(r, "block"))
		synctest.Wait()
		require.NoError(t, actor.Send(r, "dropped"))
		require.NoError(t, actor.Stop(context.Background(), watched, actor.Shutdown))
		require.NoError(t, actor.Send(r, "dropped too"))
		require.NoError(t, actor.Send(r, "newest"))
		close(release)
		d, ok := got.next(t).(actor.Down)
		require.True(t, ok, "the Down was kept")
		require.Equal(t, watched, d.Actor)
		require.Equal(t, "newest", got.next(t))
	})
}

func TestAuditInitFailureSignalsLinksMadeInInit(t *testing.T) {
	bad := errors.New("no config")
	s := actortest.NewSystem(t)
	var child actor.Ref
	_, err := s.Spawn(&fn{init: func(c *actor.Context) error {
		var err error
		child, err = c.Spawn(&fn{}, actor.LinkTo(c.Self()))
		require.NoError(t, err)
		return bad
	}})
	require.ErrorIs(t, err, bad)
	require.ErrorIs(t, waitExit(t, child), bad, "the child linked in Init went down with it")
}

// OTP: a link is gone once its exit signal has been received: a trapping
// process that links again to the dead process gets noproc, once, and not
// the old reason again.
func TestAuditTrappedExitEndsTheLink(t *testing.T) {
	boom := errors.New("boom")
	s := actortest.NewSystem(t)
	got := make(inbox, 4)
	w := spawn(t, s, &linker{trap: true, got: got})
	x := spawn(t, s, &linker{}, actor.LinkTo(w))
	require.NoError(t, actor.Send(x, stopWith{boom}))
	e := got.next(t).(actor.Exit)
	require.ErrorIs(t, e.Reason, boom)
	do(t, w, linkTo{x})
	e = got.next(t).(actor.Exit)
	require.Equal(t, x, e.From)
	require.ErrorIs(t, e.Reason, actor.ErrNoProc)
	do(t, w, "after")
	require.Equal(t, "after", got.next(t), "one signal for the new link, none left of the old")
}
