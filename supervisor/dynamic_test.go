package supervisor_test

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/supervisor"
)

func TestDynamicStatic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		sys, _ := newSystem(t)
		j := new(journal)
		sup := start(t, sys, supervisor.OneForOne, specs(j, supervisor.Permanent, "a"))
		j.take()

		// AddChild appends and starts.
		b, err := supervisor.AddChild(ctx, sup, spec(j, "b", supervisor.Permanent))
		require.NoError(t, err)
		require.False(t, b.IsZero())
		_, err = supervisor.AddChild(ctx, sup, spec(j, "tmp", supervisor.Temporary))
		require.NoError(t, err)
		require.Equal(t, []string{"a", "b", "tmp"}, ids(which(t, sup)))
		require.Equal(t, []string{"start b", "start tmp"}, j.take())

		_, err = supervisor.AddChild(ctx, sup, spec(j, "b", supervisor.Permanent))
		require.ErrorIs(t, err, supervisor.ErrRunning)
		_, err = supervisor.AddChild(ctx, sup, supervisor.ChildSpec{ID: "nostart"})
		require.ErrorIs(t, err, supervisor.ErrBadSpec)
		_, err = supervisor.AddChild(ctx, sup, supervisor.ChildSpec{Start: spec(j, "x", 0).Start})
		require.ErrorIs(t, err, supervisor.ErrBadSpec)
		boom := errors.New("boom")
		_, err = supervisor.AddChild(ctx, sup, supervisor.ChildSpec{ID: "bad", Start: func(supervisor.StartContext) (actor.Ref, error) {
			return actor.Ref{}, boom
		}})
		var se *supervisor.StartError
		require.ErrorAs(t, err, &se)
		require.Equal(t, "bad", se.Child)
		require.ErrorIs(t, err, boom)
		require.Equal(t, []string{"a", "b", "tmp"}, ids(which(t, sup)), "a spec that fails to start is not kept")

		counts, err := supervisor.CountChildren(ctx, sup)
		require.NoError(t, err)
		require.Equal(t, supervisor.Counts{Specs: 3, Active: 3, Workers: 3}, counts)

		// TerminateChild keeps the spec (a temporary's is dropped).
		require.NoError(t, supervisor.TerminateChild(ctx, sup, "b"))
		require.NoError(t, supervisor.TerminateChild(ctx, sup, refs(t, sup)["tmp"]))
		require.ErrorIs(t, supervisor.TerminateChild(ctx, sup, "nope"), supervisor.ErrNotFound)
		require.Equal(t, []string{"stop b: actor: shutdown", "stop tmp: actor: shutdown"}, j.take())
		children := which(t, sup)
		require.Equal(t, []string{"a", "b"}, ids(children))
		require.Equal(t, supervisor.Stopped, children[1].Status)
		synctest.Wait()
		require.Equal(t, supervisor.Stopped, which(t, sup)[1].Status, "a terminated child is not restarted")

		_, err = supervisor.AddChild(ctx, sup, spec(j, "b", supervisor.Permanent))
		require.ErrorIs(t, err, supervisor.ErrAlreadyPresent)
		counts, err = supervisor.CountChildren(ctx, sup)
		require.NoError(t, err)
		require.Equal(t, supervisor.Counts{Specs: 2, Active: 1, Workers: 2}, counts)

		// RestartChild and DeleteChild want a child with no process.
		_, err = supervisor.RestartChild(ctx, sup, "a")
		require.ErrorIs(t, err, supervisor.ErrRunning)
		require.ErrorIs(t, supervisor.DeleteChild(ctx, sup, "a"), supervisor.ErrRunning)
		_, err = supervisor.RestartChild(ctx, sup, "nope")
		require.ErrorIs(t, err, supervisor.ErrNotFound)
		require.ErrorIs(t, supervisor.DeleteChild(ctx, sup, "nope"), supervisor.ErrNotFound)
		b2, err := supervisor.RestartChild(ctx, sup, "b")
		require.NoError(t, err)
		require.NotEqual(t, b, b2)
		require.Equal(t, []string{"start b"}, j.take())
		require.NoError(t, supervisor.TerminateChild(ctx, sup, "b"))
		require.NoError(t, supervisor.DeleteChild(ctx, sup, "b"))
		require.Equal(t, []string{"a"}, ids(which(t, sup)))

		// Simple-one-for-one calls are refused.
		_, err = supervisor.StartChild(ctx, sup, "x")
		require.ErrorIs(t, err, supervisor.ErrStrategy)

		// A dead supervisor answers nothing.
		require.NoError(t, actor.Stop(ctx, sup, actor.Shutdown))
		_, err = supervisor.WhichChildren(ctx, sup)
		require.ErrorIs(t, err, actor.ErrNoProc)
	})
}

func TestDynamicSimpleOneForOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		sys, _ := newSystem(t)
		j := new(journal)
		sup := start(t, sys, supervisor.SimpleOneForOne, []supervisor.ChildSpec{{
			ID:      "conn",
			Restart: supervisor.Transient,
			Start: func(sc supervisor.StartContext) (actor.Ref, error) {
				switch id := sc.Args()[0].(string); id {
				case "bad":
					return actor.Ref{}, errors.New("bad conn")
				case "decline":
					return actor.Ref{}, nil
				default:
					return sc.Spawn(&worker{id: id, j: j})
				}
			},
		}})
		require.Empty(t, which(t, sup), "no child at start")

		var conns []actor.Ref
		for _, id := range []string{"c1", "c2", "c3"} {
			r, err := supervisor.StartChild(ctx, sup, id)
			require.NoError(t, err)
			conns = append(conns, r)
		}
		_, err := supervisor.StartChild(ctx, sup, "bad")
		require.ErrorContains(t, err, "bad conn")
		r, err := supervisor.StartChild(ctx, sup, "decline")
		require.NoError(t, err)
		require.True(t, r.IsZero())

		children := which(t, sup)
		require.Len(t, children, 3)
		for i, ch := range children {
			require.Equal(t, "conn", ch.ID)
			require.Equal(t, conns[i], ch.Ref)
			require.Equal(t, []any{[]string{"c1", "c2", "c3"}[i]}, ch.Args)
		}
		counts, err := supervisor.CountChildren(ctx, sup)
		require.NoError(t, err)
		require.Equal(t, supervisor.Counts{Specs: 1, Active: 3, Workers: 3}, counts)

		// Restarted with its own args after a crash; dropped after a normal exit.
		send(t, conns[0], exitWith{errCrash})
		send(t, conns[1], exitWith{actor.Normal})
		synctest.Wait()
		children = which(t, sup)
		require.Len(t, children, 2)
		require.Equal(t, []any{"c1"}, children[0].Args)
		require.NotEqual(t, conns[0], children[0].Ref)
		require.Equal(t, conns[2], children[1].Ref)

		// TerminateChild by Ref drops the child; by ID is refused.
		require.NoError(t, supervisor.TerminateChild(ctx, sup, conns[2]))
		require.ErrorIs(t, supervisor.TerminateChild(ctx, sup, conns[2]), supervisor.ErrNotFound)
		require.ErrorIs(t, supervisor.TerminateChild(ctx, sup, "conn"), supervisor.ErrStrategy)
		require.Len(t, which(t, sup), 1)

		_, err = supervisor.AddChild(ctx, sup, spec(j, "x", supervisor.Permanent))
		require.ErrorIs(t, err, supervisor.ErrStrategy)
		_, err = supervisor.RestartChild(ctx, sup, "conn")
		require.ErrorIs(t, err, supervisor.ErrStrategy)
		require.ErrorIs(t, supervisor.DeleteChild(ctx, sup, "conn"), supervisor.ErrStrategy)
	})
}

// A child waiting out a backoff delay is Restarting: RestartChild and
// DeleteChild refuse it; TerminateChild cancels the restart.
func TestDynamicRestarting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		sys, _ := newSystem(t)
		j := new(journal)
		sup := start(t, sys, supervisor.OneForOne, specs(j, supervisor.Permanent, "a"),
			supervisor.WithBackoff(time.Second, time.Minute))
		send(t, refs(t, sup)["a"], exitWith{errCrash})
		synctest.Wait()
		require.Equal(t, supervisor.Restarting, which(t, sup)[0].Status)
		_, err := supervisor.RestartChild(ctx, sup, "a")
		require.ErrorIs(t, err, supervisor.ErrRestarting)
		require.ErrorIs(t, supervisor.DeleteChild(ctx, sup, "a"), supervisor.ErrRestarting)
		require.NoError(t, supervisor.TerminateChild(ctx, sup, "a"))
		advance(time.Minute)
		require.Equal(t, supervisor.Stopped, which(t, sup)[0].Status, "the restart was cancelled")
		require.Equal(t, []string{"start a", "stop a: crash"}, j.take())
	})
}

// A Ref that is not a supervisor's gives an error, not a panic.
func TestNotASupervisor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, _ := newSystem(t)
		answer := actor.BehaviorFunc(func(c *actor.Context, _ any) { c.Reply(42) })
		r, err := sys.Spawn(answer)
		require.NoError(t, err)
		_, err = supervisor.WhichChildren(t.Context(), r)
		require.ErrorContains(t, err, "not a supervisor")
	})
}
