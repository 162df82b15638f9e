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

func TestAddRestart(t *testing.T) {
	tests := []struct {
		name      string
		history   []time.Duration
		now       time.Duration
		intensity int
		period    time.Duration
		wantOK    bool
		wantKept  int
	}{
		{"first restart", nil, 0, 1, 5 * time.Second, true, 1},
		{"no restart allowed", nil, 0, 0, 5 * time.Second, false, 1},
		{"second within period", []time.Duration{0}, time.Second, 1, 5 * time.Second, false, 2},
		{"exactly a period apart still counts (OTP)", []time.Duration{0}, 5 * time.Second, 1, 5 * time.Second, false, 2},
		{"just beyond the period", []time.Duration{0}, 5*time.Second + 1, 1, 5 * time.Second, true, 1},
		{"N within", []time.Duration{0, 1 * time.Second}, 2 * time.Second, 3, 10 * time.Second, true, 3},
		{"N+1 within", []time.Duration{0, 1 * time.Second, 2 * time.Second}, 3 * time.Second, 3, 10 * time.Second, false, 4},
		{"old ones fall out", []time.Duration{0, 1 * time.Second, 2 * time.Second}, 11500 * time.Millisecond, 3, 10 * time.Second, true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kept, ok := supervisor.AddRestart(tt.history, tt.now, tt.intensity, tt.period)
			require.Equal(t, tt.wantOK, ok)
			require.Len(t, kept, tt.wantKept)
			require.Equal(t, tt.now, kept[len(kept)-1])
		})
	}
}

// Intensity 3 in 10 s: the fourth crash within 10 s stops the supervisor,
// with an error naming the child and its last reason; crashes spread out
// beyond the period never do, however many.
func TestIntensity(t *testing.T) {
	tests := []struct {
		name     string
		gaps     []time.Duration // time before each crash
		wantExit bool
	}{
		{"N+1 within the period", []time.Duration{0, time.Second, time.Second, time.Second}, true},
		{"N+1 spread over exactly the period", []time.Duration{0, 3 * time.Second, 3 * time.Second, 4 * time.Second}, true},
		{"N within the period", []time.Duration{0, time.Second, time.Second}, false},
		{"many, spread beyond the period", []time.Duration{0, 4 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second}, false},
		{"N+1, the first just out of the period", []time.Duration{0, 3 * time.Second, 3 * time.Second, 4*time.Second + 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sys, logs := newSystem(t)
				j := new(journal)
				sup := start(t, sys, supervisor.OneForOne, specs(j, supervisor.Permanent, "a", "b"),
					supervisor.WithIntensity(3, 10*time.Second))
				last := errors.New("last straw")
				for i, gap := range tt.gaps {
					advance(gap)
					reason := errCrash
					if i == len(tt.gaps)-1 {
						reason = last
					}
					send(t, refs(t, sup)["b"], exitWith{reason})
					synctest.Wait()
				}
				reason, gone := exited(t, sup)
				require.Equal(t, tt.wantExit, gone)
				if !tt.wantExit {
					return
				}
				var ie *supervisor.IntensityError
				require.ErrorAs(t, reason, &ie)
				require.Equal(t, "b", ie.Child)
				require.Equal(t, 4, ie.Restarts)
				require.Equal(t, 10*time.Second, ie.Period)
				require.ErrorIs(t, ie.Last, last)
				require.ErrorIs(t, reason, supervisor.ErrTooManyRestarts)
				require.ErrorIs(t, reason, actor.Shutdown, "as OTP's supervisor exits with shutdown")
				require.Contains(t, reason.Error(), `child "b"`)
				require.Contains(t, reason.Error(), "last straw")
				events := j.take()
				require.Equal(t, []string{"stop b: last straw", "stop a: actor: shutdown"}, events[len(events)-2:],
					"no restart after the last crash; the other child was stopped")
				require.Equal(t, 0, sys.Count(), "no child is left")
				require.Contains(t, logs.messages(0), "supervisor: too many restarts; stopping the children and exiting")
			})
		})
	}
}

// A child whose restart fails is tried again, each try counted: a child
// that cannot start any more takes its supervisor down, and the reason
// says why.
func TestRestartFailureCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, _ := newSystem(t)
		j := new(journal)
		broken := errors.New("database unreachable")
		starts := 0
		flaky := supervisor.ChildSpec{ID: "db", Start: func(sc supervisor.StartContext) (actor.Ref, error) {
			starts++
			if starts > 1 {
				return actor.Ref{}, broken
			}
			return sc.Spawn(&worker{id: "db", j: j})
		}}
		sup := start(t, sys, supervisor.OneForOne, []supervisor.ChildSpec{flaky}, supervisor.WithIntensity(3, time.Minute))
		send(t, refs(t, sup)["db"], exitWith{errCrash})
		reason := waitExit(t, sup)
		var ie *supervisor.IntensityError
		require.ErrorAs(t, reason, &ie)
		var se *supervisor.StartError
		require.ErrorAs(t, ie.Last, &se)
		require.Equal(t, "db", se.Child)
		require.ErrorIs(t, se, broken)
		require.Equal(t, 4, starts, "the first start, then a restart and two tries again; the next one is too many")
	})
}
