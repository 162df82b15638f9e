package supervisor_test

import (
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/supervisor"
)

// Every strategy with every restart type and every kind of exit: the
// middle child of three exits, and the test checks what was stopped and
// started, in which order, and which children kept their process.
func TestStrategies(t *testing.T) {
	reasons := []struct {
		name     string
		reason   error // nil: killed with actor.Kill
		abnormal bool
	}{
		{"crash", errCrash, true},
		{"killed", nil, true},
		{"normal", actor.Normal, false},
		{"shutdown", actor.Shutdown, false},
		{"shutdown-term", fmt.Errorf("done: %w", actor.Shutdown), false},
	}
	strategies := []supervisor.Strategy{supervisor.OneForOne, supervisor.OneForAll, supervisor.RestForOne, supervisor.SimpleOneForOne}
	restarts := []supervisor.Restart{supervisor.Permanent, supervisor.Transient, supervisor.Temporary}

	for _, strategy := range strategies {
		for _, restart := range restarts {
			for _, r := range reasons {
				t.Run(fmt.Sprintf("%v/%v/%s", strategy, restart, r.name), func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						wantRestart := restart == supervisor.Permanent || (restart == supervisor.Transient && r.abnormal)
						testStrategy(t, strategy, restart, r.reason, wantRestart)
					})
				})
			}
		}
	}
}

func testStrategy(t *testing.T, strategy supervisor.Strategy, restart supervisor.Restart, reason error, wantRestart bool) {
	sys, _ := newSystem(t)
	j := new(journal)
	var sup actor.Ref
	if strategy == supervisor.SimpleOneForOne {
		sup = start(t, sys, strategy, []supervisor.ChildSpec{{
			ID:      "conn",
			Restart: restart,
			Start: func(sc supervisor.StartContext) (actor.Ref, error) {
				return sc.Spawn(&worker{id: sc.Args()[0].(string), j: j})
			},
		}})
		for _, id := range []string{"a", "b", "c"} {
			_, err := supervisor.StartChild(t.Context(), sup, id)
			require.NoError(t, err)
		}
	} else {
		sup = start(t, sys, strategy, specs(j, restart, "a", "b", "c"))
	}
	require.Equal(t, []string{"start a", "start b", "start c"}, j.take())
	before := which(t, sup)
	require.Len(t, before, 3)

	var want []string
	if reason == nil {
		require.NoError(t, actor.Kill(before[1].Ref))
	} else {
		send(t, before[1].Ref, exitWith{reason})
		want = append(want, fmt.Sprintf("stop b: %v", reason))
	}
	synctest.Wait()

	// kept[i] says whether child i still has the process it had.
	kept := []bool{true, !wantRestart, true}
	if wantRestart {
		switch strategy {
		case supervisor.OneForOne, supervisor.SimpleOneForOne:
			want = append(want, "start b")
		case supervisor.OneForAll:
			want = append(want, "stop c: actor: shutdown", "stop a: actor: shutdown", "start a", "start b", "start c")
			kept = []bool{false, false, false}
		case supervisor.RestForOne:
			want = append(want, "stop c: actor: shutdown", "start b", "start c")
			kept = []bool{true, false, false}
		}
	}
	require.Equal(t, want, j.take())

	after := which(t, sup)
	dropped := !wantRestart && (restart == supervisor.Temporary || strategy == supervisor.SimpleOneForOne)
	if dropped {
		require.Len(t, after, 2, "the child is forgotten")
		after = []supervisor.Child{after[0], {}, after[1]}
	} else {
		require.Len(t, after, 3)
	}
	for i, ch := range after {
		if i == 1 && !wantRestart {
			if !dropped {
				require.Equal(t, supervisor.Stopped, ch.Status)
				require.True(t, ch.Ref.IsZero())
			}
			continue
		}
		require.Equal(t, supervisor.Running, ch.Status, "child %d", i)
		if kept[i] {
			require.Equal(t, before[i].Ref, ch.Ref, "child %d keeps its process", i)
		} else {
			require.NotEqual(t, before[i].Ref, ch.Ref, "child %d was restarted", i)
		}
	}
	_, gone := exited(t, sup)
	require.False(t, gone, "one restart is within the default intensity")
}
