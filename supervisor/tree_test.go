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

// tree starts a three-level tree:
//
//	root (one-for-one)
//	├── calls (one-for-one)
//	│   ├── a
//	│   └── b
//	├── media (rest-for-one)
//	│   ├── c
//	│   └── d
//	└── e
func tree(t *testing.T, sys *actor.System, j *journal) actor.Ref {
	t.Helper()
	return start(t, sys, supervisor.OneForOne, []supervisor.ChildSpec{
		supervisor.SubtreeSpec("calls", supervisor.OneForOne, specs(j, supervisor.Permanent, "a", "b")),
		supervisor.SubtreeSpec("media", supervisor.RestForOne, specs(j, supervisor.Permanent, "c", "d")),
		spec(j, "e", supervisor.Permanent),
	})
}

// snapshot maps every child in the tree to its Ref.
func snapshot(t *testing.T, root actor.Ref) map[string]actor.Ref {
	t.Helper()
	out := make(map[string]actor.Ref)
	require.NoError(t, supervisor.Walk(t.Context(), root, func(ch supervisor.Child) error {
		out[ch.ID] = ch.Ref
		return nil
	}))
	return out
}

// A leaf's crash is contained: its supervisor restarts it, and nothing
// else in the tree changes.
func TestTreeContainsLeafCrash(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, _ := newSystem(t)
		j := new(journal)
		root := tree(t, sys, j)
		require.Equal(t, []string{"start a", "start b", "start c", "start d", "start e"}, j.take())
		before := snapshot(t, root)
		require.Len(t, before, 7)

		send(t, before["a"], exitWith{errCrash})
		synctest.Wait()
		require.Equal(t, []string{"stop a: crash", "start a"}, j.take())
		after := snapshot(t, root)
		for id, ref := range before {
			if id == "a" {
				require.NotEqual(t, ref, after[id])
			} else {
				require.Equal(t, ref, after[id], "%s is untouched", id)
			}
		}
		_, gone := exited(t, root)
		require.False(t, gone)
	})
}

// A subtree that reaches its intensity exits, and its own supervisor
// takes over: it restarts the subtree, whose children start afresh; the
// rest of the tree is untouched.
func TestTreeEscalates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, _ := newSystem(t)
		j := new(journal)
		root := tree(t, sys, j)
		j.take()
		before := snapshot(t, root)

		send(t, before["a"], exitWith{errCrash})
		synctest.Wait()
		send(t, snapshot(t, root)["a"], exitWith{errCrash}) // a second restart within 5 s: one too many
		require.ErrorIs(t, waitExit(t, before["calls"]), supervisor.ErrTooManyRestarts)
		synctest.Wait()
		require.Equal(t, []string{
			"stop a: crash", "start a",
			"stop a: crash", "stop b: actor: shutdown", // calls gives up
			"start a", "start b", // root restarts calls
		}, j.take())

		after := snapshot(t, root)
		for _, id := range []string{"calls", "a", "b"} {
			require.NotEqual(t, before[id], after[id], id)
		}
		for _, id := range []string{"media", "c", "d", "e"} {
			require.Equal(t, before[id], after[id], id)
		}
	})
}

// Walk visits the tree depth first in start order; Workers finds every
// running worker with its supervisor, the way the upgrade package finds
// machines.
func TestWalkAndWorkers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, _ := newSystem(t)
		j := new(journal)
		root := tree(t, sys, j)
		var order []string
		require.NoError(t, supervisor.Walk(t.Context(), root, func(ch supervisor.Child) error {
			order = append(order, ch.ID)
			return nil
		}))
		require.Equal(t, []string{"calls", "a", "b", "media", "c", "d", "e"}, order)

		snap := snapshot(t, root)
		workers, err := supervisor.Workers(t.Context(), root)
		require.NoError(t, err)
		require.Equal(t, []string{"a", "b", "c", "d", "e"}, ids(workers))
		wantSup := map[string]actor.Ref{"a": snap["calls"], "b": snap["calls"], "c": snap["media"], "d": snap["media"], "e": root}
		for _, w := range workers {
			require.Equal(t, snap[w.ID], w.Ref)
			require.Equal(t, wantSup[w.ID], w.Supervisor, w.ID)
			require.Equal(t, supervisor.Worker, w.Spec.Kind)
		}

		// fn's error stops the walk.
		stop := errors.New("enough")
		n := 0
		err = supervisor.Walk(t.Context(), root, func(supervisor.Child) error {
			if n++; n == 3 {
				return stop
			}
			return nil
		})
		require.ErrorIs(t, err, stop)
		require.Equal(t, 3, n)

		// A stopped subtree is listed, and not descended into.
		require.NoError(t, supervisor.TerminateChild(t.Context(), root, "media"))
		workers, err = supervisor.Workers(t.Context(), root)
		require.NoError(t, err)
		require.Equal(t, []string{"a", "b", "e"}, ids(workers))

		// A dead root is an error.
		require.NoError(t, actor.Stop(t.Context(), root, actor.Shutdown))
		_, err = supervisor.Workers(t.Context(), root)
		require.ErrorIs(t, err, actor.ErrNoProc)
	})
}

// Walk skips a subtree that exits while it is being walked.
func TestWalkSkipsVanishedSubtree(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, _ := newSystem(t)
		j := new(journal)
		calls := supervisor.SubtreeSpec("calls", supervisor.OneForOne, specs(j, supervisor.Permanent, "a", "b"))
		calls.Restart = supervisor.Transient // not restarted after it is stopped
		root := start(t, sys, supervisor.OneForOne, []supervisor.ChildSpec{
			calls,
			supervisor.SubtreeSpec("media", supervisor.RestForOne, specs(j, supervisor.Permanent, "c", "d")),
			spec(j, "e", supervisor.Permanent),
		})
		var seen []string
		require.NoError(t, supervisor.Walk(t.Context(), root, func(ch supervisor.Child) error {
			seen = append(seen, ch.ID)
			if ch.ID == "calls" {
				// calls goes away before Walk asks it for its children.
				require.NoError(t, actor.Stop(t.Context(), ch.Ref, actor.Shutdown))
			}
			return nil
		}))
		require.Equal(t, []string{"calls", "media", "c", "d", "e"}, seen)
	})
}

// A supervisor is an actor like any other: a monitor on it gets its exit
// reason.
func TestSupervisorIsMonitorable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, _ := newSystem(t)
		j := new(journal)
		sup := start(t, sys, supervisor.OneForOne, specs(j, supervisor.Permanent, "a"), supervisor.WithIntensity(0, time.Second))
		downs := make(chan actor.Down, 1)
		_, err := sys.Spawn(&watcher{target: sup, downs: downs})
		require.NoError(t, err)
		send(t, refs(t, sup)["a"], exitWith{errCrash})
		down := <-downs
		require.Equal(t, sup, down.Actor)
		var ie *supervisor.IntensityError
		require.ErrorAs(t, down.Reason, &ie)
		require.ErrorIs(t, ie.Last, errCrash)
	})
}

type watcher struct {
	target actor.Ref
	downs  chan<- actor.Down
}

func (w *watcher) Init(c *actor.Context) error {
	c.Monitor(w.target)
	return nil
}

func (w *watcher) Receive(_ *actor.Context, msg any) {
	if d, ok := msg.(actor.Down); ok {
		w.downs <- d
	}
}
