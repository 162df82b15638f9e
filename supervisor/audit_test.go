package supervisor_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/supervisor"
)

// This file holds the audit of the supervisor against OTP's semantics:
// one test per behaviour most likely to be subtly wrong.

// TestAuditIntensityCountsRestarts: the window counts restarts, not exits.
// A group restart is one restart, however many children it stops; the
// exits of a temporary child and a transient child's normal exit are not
// restarts; the (N+1)th restart within the period is the one refused.
func TestAuditIntensityCountsRestarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, _ := newSystem(t)
		j := new(journal)
		cs := []supervisor.ChildSpec{
			spec(j, "a", supervisor.Permanent),
			spec(j, "b", supervisor.Permanent),
			spec(j, "tmp", supervisor.Temporary),
			spec(j, "tr", supervisor.Transient),
		}
		sup := start(t, sys, supervisor.OneForAll, cs, supervisor.WithIntensity(2, time.Minute))
		ctx := context.Background()

		send(t, refs(t, sup)["tr"], exitWith{actor.Normal})
		synctest.Wait()
		_, err := supervisor.RestartChild(ctx, sup, "tr")
		require.NoError(t, err)
		send(t, refs(t, sup)["tr"], exitWith{fmt.Errorf("done: %w", actor.Shutdown)})
		synctest.Wait()
		_, err = supervisor.RestartChild(ctx, sup, "tr")
		require.NoError(t, err)
		send(t, refs(t, sup)["tmp"], exitWith{errCrash})
		synctest.Wait()
		require.Equal(t, []string{"a", "b", "tr"}, ids(which(t, sup)), "the temporary child is dropped, not restarted")
		j.take()

		advance(time.Second)
		send(t, refs(t, sup)["a"], exitWith{errCrash}) // restart 1, a group of three
		synctest.Wait()
		require.Equal(t, []string{"stop a: crash", "stop tr: actor: shutdown", "stop b: actor: shutdown", "start a", "start b", "start tr"}, j.take())
		advance(time.Second)
		send(t, refs(t, sup)["b"], exitWith{errCrash}) // restart 2
		synctest.Wait()
		_, gone := exited(t, sup)
		require.False(t, gone, "two restarts within the period are allowed")
		j.take()

		advance(time.Second)
		last := errors.New("b again")
		send(t, refs(t, sup)["b"], exitWith{last}) // restart 3: one too many
		reason := waitExit(t, sup)
		var ie *supervisor.IntensityError
		require.ErrorAs(t, reason, &ie)
		require.Equal(t, "b", ie.Child)
		require.Equal(t, 3, ie.Restarts)
		require.ErrorIs(t, ie.Last, last)
		require.Contains(t, reason.Error(), `child "b"`)
		require.Contains(t, reason.Error(), "b again")
		require.Equal(t, []string{"stop b: b again", "stop tr: actor: shutdown", "stop a: actor: shutdown"}, j.take(),
			"b exits, then the others are stopped in reverse order")
	})
}

// TestAuditFailedRestartInGroup: a rest-for-one restart in which a later
// child fails to start is tried again, each try counted; past the
// intensity the supervisor stops what runs, in reverse order, and exits
// naming the child that failed and its start error.
func TestAuditFailedRestartInGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, _ := newSystem(t)
		j := new(journal)
		broken := errors.New("no route")
		c, cStarts := startsOnce(j, "c", broken)
		cs := append(specs(j, supervisor.Permanent, "a", "b"), c)
		sup := start(t, sys, supervisor.RestForOne, cs, supervisor.WithIntensity(2, time.Minute))
		j.take()
		send(t, refs(t, sup)["b"], exitWith{errCrash})
		reason := waitExit(t, sup)
		var ie *supervisor.IntensityError
		require.ErrorAs(t, reason, &ie)
		require.Equal(t, "c", ie.Child)
		var se *supervisor.StartError
		require.ErrorAs(t, ie.Last, &se)
		require.Equal(t, "c", se.Child)
		require.ErrorIs(t, se, broken)
		require.Equal(t, 3, *cStarts, "the start, the restart, one try again; the second try again is one too many")
		require.Equal(t, []string{
			"stop b: crash",
			"stop c: actor: shutdown", // b's restart stops c
			"start b",                 // then starts b, and c fails
			"stop b: actor: shutdown", // the supervisor gives up: reverse order
			"stop a: actor: shutdown",
		}, j.take())
	})
}

// TestAuditTerminateRestartDelete: terminating a permanent child does not
// restart it and keeps its spec; RestartChild starts it again; DeleteChild
// refuses a running child and removes a stopped one.
func TestAuditTerminateRestartDelete(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, _ := newSystem(t)
		j := new(journal)
		sup := start(t, sys, supervisor.OneForAll, specs(j, supervisor.Permanent, "a", "b"), supervisor.WithIntensity(0, time.Minute))
		ctx := context.Background()
		j.take()

		require.ErrorIs(t, supervisor.DeleteChild(ctx, sup, "a"), supervisor.ErrRunning)
		require.NoError(t, supervisor.TerminateChild(ctx, sup, "a"))
		synctest.Wait()
		require.Equal(t, []string{"stop a: actor: shutdown"}, j.take(), "not restarted, and b is left alone")
		_, gone := exited(t, sup)
		require.False(t, gone, "a terminated child is no restart, even with an intensity of 0")
		ch := which(t, sup)
		require.Equal(t, []string{"a", "b"}, ids(ch))
		require.Equal(t, supervisor.Stopped, ch[0].Status)

		r, err := supervisor.RestartChild(ctx, sup, "a")
		require.NoError(t, err)
		require.Equal(t, r, refs(t, sup)["a"])
		require.Equal(t, []string{"start a"}, j.take())
		_, err = supervisor.RestartChild(ctx, sup, "a")
		require.ErrorIs(t, err, supervisor.ErrRunning)

		require.NoError(t, supervisor.TerminateChild(ctx, sup, "a"))
		require.NoError(t, supervisor.DeleteChild(ctx, sup, "a"))
		require.Equal(t, []string{"b"}, ids(which(t, sup)))
		require.ErrorIs(t, supervisor.DeleteChild(ctx, sup, "a"), supervisor.ErrNotFound)
		err = supervisor.TerminateChild(ctx, sup, "a")
		require.ErrorIs(t, err, supervisor.ErrNotFound)
		require.ErrorContains(t, err, `child "a"`, "the error names the child asked for")
		err = supervisor.TerminateChild(ctx, sup, r)
		require.ErrorIs(t, err, supervisor.ErrNotFound)
		require.ErrorContains(t, err, r.String())
	})
}

// TestAuditDynamicDeclinedRestart: a simple-one-for-one child whose
// restart is declined (OTP's ignore) has no process and no Ref by which
// TerminateChild could name it: it is dropped, not kept for ever.
func TestAuditDynamicDeclinedRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, _ := newSystem(t)
		j := new(journal)
		starts := 0
		tmpl := supervisor.ChildSpec{ID: "session", Start: func(sc supervisor.StartContext) (actor.Ref, error) {
			starts++
			if starts > 1 {
				return actor.Ref{}, nil // declines
			}
			return sc.Spawn(&worker{id: "session", j: j})
		}}
		sup := start(t, sys, supervisor.SimpleOneForOne, []supervisor.ChildSpec{tmpl})
		ctx := context.Background()
		r, err := supervisor.StartChild(ctx, sup, "555-0100")
		require.NoError(t, err)
		send(t, r, exitWith{errCrash})
		synctest.Wait()
		require.Equal(t, 2, starts)
		require.Empty(t, which(t, sup))
		n, err := supervisor.CountChildren(ctx, sup)
		require.NoError(t, err)
		require.Equal(t, supervisor.Counts{Specs: 1}, n)
	})
}

// TestAuditDynamicShutdownAndRestart: a simple-one-for-one supervisor
// restarts a crashed child with its arguments, and at its own stop stops
// every child (in no promised order), each with reason Shutdown.
func TestAuditDynamicShutdownAndRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, _ := newSystem(t)
		j := new(journal)
		tmpl := supervisor.ChildSpec{ID: "session", Start: func(sc supervisor.StartContext) (actor.Ref, error) {
			return sc.Spawn(&worker{id: sc.Args()[0].(string), j: j})
		}}
		sup := start(t, sys, supervisor.SimpleOneForOne, []supervisor.ChildSpec{tmpl}, supervisor.WithIntensity(5, time.Minute))
		ctx := context.Background()
		var rs []actor.Ref
		for _, n := range []string{"x", "y", "z"} {
			r, err := supervisor.StartChild(ctx, sup, n)
			require.NoError(t, err)
			rs = append(rs, r)
		}
		j.take()
		send(t, rs[1], exitWith{errCrash})
		synctest.Wait()
		require.Equal(t, []string{"stop y: crash", "start y"}, j.take())
		ch := which(t, sup)
		require.Len(t, ch, 3)
		require.Equal(t, []any{"y"}, ch[1].Args, "the restarted child keeps its arguments and its place")
		require.NotEqual(t, rs[1], ch[1].Ref)
		live := []actor.Ref{ch[0].Ref, ch[1].Ref, ch[2].Ref}

		require.NoError(t, actor.Stop(ctx, sup, actor.Shutdown))
		for _, r := range live {
			reason, gone := exited(t, r)
			require.True(t, gone)
			require.ErrorIs(t, reason, actor.Shutdown)
		}
		require.ElementsMatch(t, []string{"stop x: actor: shutdown", "stop y: actor: shutdown", "stop z: actor: shutdown"}, j.take())
	})
}

// TestAuditBrutalKillAndInfinity: a brutal-kill child is killed (no
// terminate hook); a subtree with an Infinity budget is waited for as long
// as its own children take, far beyond the default budget.
func TestAuditBrutalKillAndInfinity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, _ := newSystem(t)
		j := new(journal)
		slow := supervisor.ChildSpec{ID: "slow", Shutdown: 2 * time.Hour, Start: func(sc supervisor.StartContext) (actor.Ref, error) {
			return sc.Spawn(&worker{id: "slow", j: j, stopTakes: time.Hour})
		}}
		brutal := spec(j, "brutal", supervisor.Permanent)
		brutal.Shutdown = supervisor.BrutalKill
		sub := supervisor.SubtreeSpec("sub", supervisor.OneForOne, []supervisor.ChildSpec{slow})
		sup := start(t, sys, supervisor.OneForOne, []supervisor.ChildSpec{sub, brutal})
		rs := refs(t, sup)
		j.take()
		t0 := time.Now()
		require.NoError(t, actor.Stop(context.Background(), sup, actor.Shutdown))
		require.Equal(t, time.Hour, time.Since(t0), "the subtree was waited for")
		reason, gone := exited(t, rs["brutal"])
		require.True(t, gone)
		require.ErrorIs(t, reason, actor.Killed)
		reason, gone = exited(t, rs["sub"])
		require.True(t, gone)
		require.ErrorIs(t, reason, actor.Shutdown)
		require.Equal(t, []string{"stop slow: actor: shutdown"}, j.take(), "brutal's hook never ran; slow's did, in full")
	})
}

// lateExiter is a child that, when told, blocks until released and then
// exits with its own reason: a child that exits while its supervisor is
// stopping it.
type lateExiter struct{}

type crashLater struct {
	release chan struct{}
	reason  error
}

func (lateExiter) Init(*actor.Context) error { return nil }
func (lateExiter) Receive(c *actor.Context, msg any) {
	if m, ok := msg.(crashLater); ok {
		<-m.release
		c.Stop(m.reason)
	}
}

// TestAuditChildExitsWhileBeingStopped: TerminateChild of a child that
// exits on its own meanwhile: the child is not restarted, its reason is
// reported (OTP's shutdown_error), and the supervisor carries on.
func TestAuditChildExitsWhileBeingStopped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, logs := newSystem(t)
		starts := 0
		cs := []supervisor.ChildSpec{{ID: "x", Start: func(sc supervisor.StartContext) (actor.Ref, error) {
			starts++
			return sc.Spawn(lateExiter{})
		}}}
		sup := start(t, sys, supervisor.OneForOne, cs, supervisor.WithIntensity(0, time.Minute))
		x := refs(t, sup)["x"]
		release := make(chan struct{})
		own := errors.New("own reason")
		send(t, x, crashLater{release, own})
		synctest.Wait()
		done := make(chan error, 1)
		go func() { done <- supervisor.TerminateChild(context.Background(), sup, "x") }()
		synctest.Wait()
		close(release)
		require.NoError(t, <-done)
		synctest.Wait()
		reason, gone := exited(t, x)
		require.True(t, gone)
		_, supGone := exited(t, sup)
		require.False(t, supGone, "not a restart: the intensity of 0 is not reached")
		require.Equal(t, 1, starts)
		require.Equal(t, supervisor.Stopped, which(t, sup)[0].Status)
		require.ErrorIs(t, reason, own, "a Stop asked of a busy child waits for its handler, which stopped it first")
		require.Contains(t, logs.messages(slog.LevelError), "supervisor: child exited with an unexpected reason while being stopped")
	})
}

// TestAuditGroupRestartTriesAgain: a group restart in which a child fails
// to start once stops what it started (in reverse order), counts one more
// restart, and starts the whole group again, in start order, as OTP's
// try_again_restart does.
func TestAuditGroupRestartTriesAgain(t *testing.T) {
	for _, tc := range []struct {
		name     string
		strategy supervisor.Strategy
		crash    string
		want     []string
	}{
		{"one-for-all", supervisor.OneForAll, "c", []string{
			"stop c: crash", "stop b: actor: shutdown", "stop a: actor: shutdown",
			"start a", "b fails", "stop a: actor: shutdown",
			"start a", "start b", "start c",
		}},
		{"rest-for-one, the crashed child fails", supervisor.RestForOne, "b", []string{
			"stop b: crash", "stop c: actor: shutdown",
			"b fails",
			"start b", "start c",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sys, _ := newSystem(t)
				j := new(journal)
				bStarts := 0
				b := supervisor.ChildSpec{ID: "b", Start: func(sc supervisor.StartContext) (actor.Ref, error) {
					bStarts++
					if bStarts == 2 {
						j.add("b fails")
						return actor.Ref{}, errCrash
					}
					return sc.Spawn(&worker{id: "b", j: j})
				}}
				cs := []supervisor.ChildSpec{spec(j, "a", supervisor.Permanent), b, spec(j, "c", supervisor.Permanent)}
				sup := start(t, sys, tc.strategy, cs, supervisor.WithIntensity(2, time.Minute))
				j.take()
				send(t, refs(t, sup)[tc.crash], exitWith{errCrash})
				synctest.Wait()
				require.Equal(t, tc.want, j.take())
				for _, ch := range which(t, sup) {
					require.Equal(t, supervisor.Running, ch.Status, ch.ID)
				}
				// Two restarts are counted: the next crash is one too many.
				send(t, refs(t, sup)["a"], exitWith{errCrash})
				var ie *supervisor.IntensityError
				require.ErrorAs(t, waitExit(t, sup), &ie)
				require.Equal(t, "a", ie.Child)
			})
		})
	}
}

// TestAuditSimultaneousCrashesInGroup: two children of a one-for-all
// supervisor crash together; the second one's exit is taken in by the
// first one's group restart (it is stopped, or found stopped), so the
// group restarts once and one restart is counted, as in OTP.
func TestAuditSimultaneousCrashesInGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, _ := newSystem(t)
		j := new(journal)
		sup := start(t, sys, supervisor.OneForAll, specs(j, supervisor.Permanent, "a", "b", "c"), supervisor.WithIntensity(1, time.Minute))
		before := refs(t, sup)
		j.take()
		// Both crash orders wait in the mailboxes before either runs: sent
		// one after the other, a's crash could stop b first.
		gate := make(chan struct{})
		for _, id := range []string{"a", "b"} {
			send(t, before[id], hold{gate})
			send(t, before[id], exitWith{errCrash})
		}
		close(gate)
		synctest.Wait()
		_, gone := exited(t, sup)
		require.False(t, gone, "one restart, within an intensity of 1")
		after := refs(t, sup)
		for id, r := range after {
			require.NotEqual(t, before[id], r, id)
			_, dead := exited(t, r)
			require.False(t, dead, id)
		}
		starts := 0
		for _, e := range j.take() {
			if len(e) > 6 && e[:6] == "start " {
				starts++
			}
		}
		require.Equal(t, 3, starts, "the group started once")
	})
}

// busy is a child whose handler, told to, takes d of (fake) time.
type busy struct {
	id string
	j  *journal
}

type busyFor struct{ d time.Duration }

func (b *busy) Init(*actor.Context) error { b.j.add("start %s", b.id); return nil }
func (b *busy) Receive(_ *actor.Context, msg any) {
	if m, ok := msg.(busyFor); ok {
		time.Sleep(m.d) // only in bubbles: fake time
	}
}
func (b *busy) Terminate(_ *actor.Context, reason error) { b.j.add("stop %s: %v", b.id, reason) }

// TestAuditGroupStopBudgets: a rest-for-one restart stops the later
// children in reverse order, each within its own budget: a busy child
// past its budget is killed (no terminate hook), then the next is stopped.
func TestAuditGroupStopBudgets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, _ := newSystem(t)
		j := new(journal)
		c := supervisor.ChildSpec{ID: "c", Shutdown: time.Second, Start: func(sc supervisor.StartContext) (actor.Ref, error) {
			return sc.Spawn(&busy{id: "c", j: j})
		}}
		cs := []supervisor.ChildSpec{spec(j, "a", supervisor.Permanent), spec(j, "b", supervisor.Permanent), c}
		sup := start(t, sys, supervisor.RestForOne, cs)
		rs := refs(t, sup)
		j.take()
		send(t, rs["c"], busyFor{3 * time.Second})
		synctest.Wait()
		t0 := time.Now()
		send(t, rs["a"], exitWith{errCrash})
		synctest.Wait()
		which(t, sup) // answered once the restart is done: fake time runs meanwhile
		require.Equal(t, 3*time.Second, time.Since(t0), "c was asked, killed after its 1 s, and exited when its handler returned")
		reason, gone := exited(t, rs["c"])
		require.True(t, gone)
		require.ErrorIs(t, reason, actor.Killed)
		require.Equal(t, []string{"stop a: crash", "stop b: actor: shutdown", "start a", "start b", "start c"}, j.take(),
			"c killed first (no hook), then b, then all started in order")
	})
}
