package supervisor_test

import (
	"context"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/supervisor"
)

// Stopping a supervisor stops its children in reverse start order, a
// subtree's children before the subtree, and the supervisor exits with
// the reason it was given.
func TestShutdownOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, _ := newSystem(t)
		j := new(journal)
		sup := start(t, sys, supervisor.OneForOne, []supervisor.ChildSpec{
			spec(j, "a", supervisor.Permanent),
			supervisor.SubtreeSpec("sub", supervisor.OneForOne, specs(j, supervisor.Permanent, "x", "y")),
			spec(j, "b", supervisor.Permanent),
		})
		require.Equal(t, []string{"start a", "start x", "start y", "start b"}, j.take())
		require.NoError(t, actor.Stop(t.Context(), sup, actor.Shutdown))
		require.Equal(t, []string{
			"stop b: actor: shutdown",
			"stop y: actor: shutdown",
			"stop x: actor: shutdown",
			"stop a: actor: shutdown",
		}, j.take())
		require.ErrorIs(t, waitExit(t, sup), actor.Shutdown)
		require.Equal(t, 0, sys.Count())
	})
}

// Each child gets its shutdown budget; then it is killed. Go cannot
// preempt: a kill takes effect when the child's handler returns, and
// cannot interrupt a terminate hook that has begun.
func TestShutdownBudget(t *testing.T) {
	tests := []struct {
		name          string
		shutdown      time.Duration
		killWait      time.Duration // 0: the default
		busyFor       time.Duration // the child is in a handler this long
		stopTakes     time.Duration // its terminate hook takes this long
		wantTook      time.Duration // until the supervisor has stopped
		wantReason    error
		wantTerminate bool
		wantLog       string
	}{
		{
			name: "stops within its budget", shutdown: time.Second, busyFor: 500 * time.Millisecond,
			wantTook: 500 * time.Millisecond, wantReason: actor.Shutdown, wantTerminate: true,
		},
		{
			name: "killed after its budget", shutdown: time.Second, busyFor: 1500 * time.Millisecond,
			wantTook: 1500 * time.Millisecond, wantReason: actor.Killed,
			wantLog: "supervisor: child did not stop within its shutdown budget; killing it",
		},
		{
			name: "abandoned when the kill cannot land", shutdown: time.Second, killWait: 2 * time.Second, busyFor: time.Hour,
			wantTook: 3 * time.Second, wantReason: actor.Killed,
			wantLog: "supervisor: killed child still running its handler; abandoning it",
		},
		{
			name: "a terminate hook that overruns is not interrupted", shutdown: time.Second, stopTakes: 2 * time.Second,
			wantTook: 2 * time.Second, wantReason: actor.Shutdown, wantTerminate: true,
			wantLog: "supervisor: child did not stop within its shutdown budget; killing it",
		},
		{
			name: "brutal kill", shutdown: supervisor.BrutalKill,
			wantTook: 0, wantReason: actor.Killed,
		},
		{
			name: "brutal kill waits for the handler", shutdown: supervisor.BrutalKill, busyFor: time.Second,
			wantTook: time.Second, wantReason: actor.Killed,
		},
		{
			name: "infinity waits", shutdown: supervisor.Infinity, stopTakes: time.Hour,
			wantTook: time.Hour, wantReason: actor.Shutdown, wantTerminate: true,
		},
		{
			name: "the default budget is five seconds", shutdown: 0, busyFor: 6 * time.Second,
			wantTook: 6 * time.Second, wantReason: actor.Killed,
			wantLog: "supervisor: child did not stop within its shutdown budget; killing it",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sys, logs := newSystem(t)
				j := new(journal)
				slow := supervisor.ChildSpec{ID: "slow", Shutdown: tt.shutdown, Start: func(sc supervisor.StartContext) (actor.Ref, error) {
					return sc.Spawn(&worker{id: "slow", j: j, stopTakes: tt.stopTakes})
				}}
				var opts []supervisor.Option
				if tt.killWait > 0 {
					opts = append(opts, supervisor.WithKillWait(tt.killWait))
				}
				sup := start(t, sys, supervisor.OneForOne, []supervisor.ChildSpec{spec(j, "first", supervisor.Permanent), slow}, opts...)
				child := refs(t, sup)["slow"]
				j.take()
				if tt.busyFor > 0 {
					release := make(chan struct{})
					send(t, child, hold{until: release})
					go func() {
						time.Sleep(tt.busyFor)
						close(release)
					}()
					synctest.Wait()
				}

				t0 := time.Now()
				require.NoError(t, actor.Stop(t.Context(), sup, actor.Shutdown))
				require.Equal(t, tt.wantTook, time.Since(t0))
				require.Equal(t, "stop first: actor: shutdown", j.take()[func() int {
					if tt.wantTerminate {
						return 1
					}
					return 0
				}()], "the next child is stopped after this one, however it ended")

				require.ErrorIs(t, waitExit(t, child), tt.wantReason)
				if tt.wantLog != "" {
					require.Contains(t, logs.messages(slog.LevelWarn), tt.wantLog)
				} else {
					require.Empty(t, logs.messages(slog.LevelWarn))
				}
			})
		})
	}
}

// A simple-one-for-one supervisor stops its children all at once, within
// one budget, as OTP does; the others stop them one after another.
func TestShutdownParallelForDynamicChildren(t *testing.T) {
	tests := []struct {
		strategy supervisor.Strategy
		wantTook time.Duration
	}{
		{supervisor.SimpleOneForOne, time.Second},
		{supervisor.OneForOne, 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.strategy.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sys, _ := newSystem(t)
				j := new(journal)
				newWorker := func(id string) supervisor.ChildSpec {
					return supervisor.ChildSpec{ID: id, Start: func(sc supervisor.StartContext) (actor.Ref, error) {
						if args := sc.Args(); len(args) > 0 {
							id = args[0].(string)
						}
						return sc.Spawn(&worker{id: id, j: j, stopTakes: time.Second})
					}}
				}
				var sup actor.Ref
				if tt.strategy == supervisor.SimpleOneForOne {
					sup = start(t, sys, tt.strategy, []supervisor.ChildSpec{newWorker("conn")})
					for _, id := range []string{"a", "b", "c"} {
						_, err := supervisor.StartChild(t.Context(), sup, id)
						require.NoError(t, err)
					}
				} else {
					sup = start(t, sys, tt.strategy, []supervisor.ChildSpec{newWorker("a"), newWorker("b"), newWorker("c")})
				}
				t0 := time.Now()
				require.NoError(t, actor.Stop(t.Context(), sup, actor.Shutdown))
				require.Equal(t, tt.wantTook, time.Since(t0))
				require.Equal(t, 0, sys.Count())
			})
		})
	}
}

// A supervisor whose parent exits stops its children in order and exits
// with the parent's reason, whatever it is; exits of other linked actors
// are ignored, as in OTP.
func TestParentExit(t *testing.T) {
	tests := []struct {
		name   string
		end    func(t *testing.T, parent actor.Ref)
		reason error
	}{
		{"crash", func(t *testing.T, p actor.Ref) { send(t, p, exitWith{errCrash}) }, errCrash},
		{"normal", func(t *testing.T, p actor.Ref) { send(t, p, exitWith{actor.Normal}) }, actor.Normal},
		{"killed", func(t *testing.T, p actor.Ref) { require.NoError(t, actor.Kill(p)) }, actor.Killed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sys, _ := newSystem(t)
				j := new(journal)
				parent, err := sys.Spawn(&worker{id: "parent", j: j})
				require.NoError(t, err)
				sup := start(t, sys, supervisor.OneForOne, specs(j, supervisor.Permanent, "a", "b"), supervisor.LinkTo(parent))

				// Another actor linked to the supervisor, crashing: ignored.
				other, err := sys.Spawn(&worker{id: "other", j: j}, actor.LinkTo(sup))
				require.NoError(t, err)
				send(t, other, exitWith{errCrash})
				synctest.Wait()
				_, gone := exited(t, sup)
				require.False(t, gone)
				j.take()

				tt.end(t, parent)
				require.ErrorIs(t, waitExit(t, sup), tt.reason)
				events := j.take()
				require.Equal(t, []string{"stop b: actor: shutdown", "stop a: actor: shutdown"}, without(events, "stop parent: "+tt.reason.Error()))
			})
		})
	}
}

// An exit signal from outside any actor (actor.SendExit) stops a
// supervisor unless it is Normal.
func TestSendExit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, _ := newSystem(t)
		j := new(journal)
		sup := start(t, sys, supervisor.OneForOne, specs(j, supervisor.Permanent, "a"))
		require.NoError(t, actor.SendExit(sup, actor.Normal))
		synctest.Wait()
		_, gone := exited(t, sup)
		require.False(t, gone)
		require.NoError(t, actor.SendExit(sup, errCrash))
		require.ErrorIs(t, waitExit(t, sup), errCrash)
		require.Equal(t, []string{"start a", "stop a: actor: shutdown"}, j.take())
	})
}

// A subtree whose Start did not link it as its parent's child still goes
// down with its parent: the parent tells it who its parent is.
func TestSubtreeKnowsItsParent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, _ := newSystem(t)
		j := new(journal)
		var sub actor.Ref
		root := start(t, sys, supervisor.OneForOne, []supervisor.ChildSpec{{
			ID:   "sub",
			Kind: supervisor.Subtree,
			Start: func(sc supervisor.StartContext) (actor.Ref, error) {
				var err error
				sub, err = supervisor.Start(sc.System(), supervisor.OneForOne, specs(j, supervisor.Permanent, "x", "y"))
				return sub, err
			},
		}})
		synctest.Wait()
		require.NoError(t, actor.Kill(root))
		require.ErrorIs(t, waitExit(t, sub), actor.Killed)
		require.Equal(t, []string{"start x", "start y", "stop y: actor: shutdown", "stop x: actor: shutdown"}, j.take())
		require.Equal(t, 0, sys.Count())
	})
}

// System.Shutdown stops a tree without a restart storm or an error
// report: a supervisor whose child cannot be restarted because the
// System is stopping just exits.
func TestSystemShutdownIsQuiet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := new(logs)
		sys := actor.NewSystem(actor.WithLogger(slog.New(l)))
		j := new(journal)
		start(t, sys, supervisor.OneForAll, []supervisor.ChildSpec{
			spec(j, "a", supervisor.Permanent),
			supervisor.SubtreeSpec("sub", supervisor.RestForOne, specs(j, supervisor.Permanent, "x", "y")),
			spec(j, "b", supervisor.Permanent),
		})
		require.NoError(t, sys.Shutdown(context.Background()))
		require.Empty(t, l.messages(slog.LevelWarn))
		require.Equal(t, 0, sys.Count())
	})
}

// System.Shutdown takes a tree down from its root, in tree order, even
// after restarts have made some children newer than their later siblings:
// the root supervisor stops its children in reverse start order, each
// subtree its own children first. (Stopping actors in reverse spawn order
// would stop the restarted x and a first.)
func TestSystemShutdownTreeOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := new(logs)
		sys := actor.NewSystem(actor.WithLogger(slog.New(l)))
		j := new(journal)
		root := start(t, sys, supervisor.OneForOne, []supervisor.ChildSpec{
			spec(j, "a", supervisor.Permanent),
			supervisor.SubtreeSpec("sub", supervisor.OneForOne, specs(j, supervisor.Permanent, "x", "y"),
				supervisor.WithIntensity(5, time.Hour)),
			spec(j, "b", supervisor.Permanent),
		}, supervisor.WithIntensity(5, time.Hour))
		sub := refs(t, root)["sub"]
		send(t, refs(t, sub)["x"], exitWith{errCrash})
		synctest.Wait()
		send(t, refs(t, root)["a"], exitWith{errCrash})
		synctest.Wait()
		require.Equal(t, []string{
			"start a", "start x", "start y", "start b",
			"stop x: crash", "start x",
			"stop a: crash", "start a",
		}, j.take())

		require.NoError(t, sys.Shutdown(context.Background()))
		require.Equal(t, []string{
			"stop b: actor: shutdown",
			"stop y: actor: shutdown",
			"stop x: actor: shutdown",
			"stop a: actor: shutdown",
		}, j.take())
		require.ErrorIs(t, waitExit(t, root), actor.Shutdown)
		require.Empty(t, l.messages(slog.LevelWarn))
		require.Equal(t, 0, sys.Count())
	})
}

// A supervisor that gives up takes its whole subtree down in order, as a
// stopped one does: its other children in reverse start order, a subtree's
// children before the subtree.
func TestIntensityExitTakesTreeDownInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, _ := newSystem(t)
		j := new(journal)
		root := start(t, sys, supervisor.OneForOne, []supervisor.ChildSpec{
			spec(j, "a", supervisor.Permanent),
			supervisor.SubtreeSpec("sub", supervisor.OneForOne, specs(j, supervisor.Permanent, "x", "y")),
			spec(j, "b", supervisor.Permanent),
			spec(j, "c", supervisor.Permanent),
		}, supervisor.WithIntensity(0, time.Second))
		j.take()
		send(t, refs(t, root)["b"], exitWith{errCrash})
		require.ErrorIs(t, waitExit(t, root), supervisor.ErrTooManyRestarts)
		require.Equal(t, []string{
			"stop b: crash",
			"stop c: actor: shutdown",
			"stop y: actor: shutdown",
			"stop x: actor: shutdown",
			"stop a: actor: shutdown",
		}, j.take())
		require.Equal(t, 0, sys.Count())
	})
}
