package supervisor_test

import (
	"errors"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/supervisor"
)

// The window refuses exactly the restart that makes intensity+1 within
// the period, counted as OTP counts: a restart exactly a period ago still
// counts.
func TestWindow(t *testing.T) {
	s := time.Second
	tests := []struct {
		name      string
		times     []time.Duration
		intensity int
		period    time.Duration
		want      []bool
	}{
		{"first restart", []time.Duration{0}, 1, 5 * s, []bool{true}},
		{"no restart allowed", []time.Duration{0}, 0, 5 * s, []bool{false}},
		{"second within period", []time.Duration{0, s}, 1, 5 * s, []bool{true, false}},
		{"exactly a period apart still counts (OTP)", []time.Duration{0, 5 * s}, 1, 5 * s, []bool{true, false}},
		{"just beyond the period", []time.Duration{0, 5*s + 1}, 1, 5 * s, []bool{true, true}},
		{"N within", []time.Duration{0, s, 2 * s}, 3, 10 * s, []bool{true, true, true}},
		{"N+1 within", []time.Duration{0, s, 2 * s, 3 * s}, 3, 10 * s, []bool{true, true, true, false}},
		{"old ones fall out", []time.Duration{0, s, 2 * s, 11500 * time.Millisecond}, 3, 10 * s, []bool{true, true, true, true}},
		{"the ring wraps", []time.Duration{0, s, 2 * s, 11 * s, 12 * s, 13 * s, 22500 * time.Millisecond, 23 * s, 23500 * time.Millisecond, 24 * s}, 3, 10 * s,
			[]bool{true, true, true, true, true, true, true, true, true, false}},
		{"a burst after a quiet spell", []time.Duration{0, 100 * s, 100 * s, 100 * s}, 2, 10 * s, []bool{true, true, true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, supervisor.AddRestarts(tt.times, tt.intensity, tt.period))
		})
	}
}

// The ring agrees with the definition, counted the slow way over every
// restart so far, on long random runs (each allowed restart is kept, as
// the supervisor keeps running; the run ends at the first refusal).
func TestWindowMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for run := range 300 {
		intensity := rng.IntN(6)
		period := time.Duration(1+rng.IntN(20)) * time.Second
		checkWindow(t, rng, run, intensity, period, 200, int64(period)/2, false)
	}
}

// The same with windows of hundreds of restarts, which the ring holds in
// blocks of 256: filled, wrapped several times, then refused by a burst.
func TestWindowMatchesDefinitionAcrossBlocks(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for run, intensity := range []int{255, 256, 257, 511, 512, 513, 700} {
		period := time.Second
		// Gaps average 1.5 × period/intensity: the window fills and
		// wraps without refusing (mostly), until the burst at the end.
		checkWindow(t, rng, run, intensity, period, 4*intensity, 3*int64(period)/int64(intensity), true)
	}
}

// checkWindow runs n restarts, each after a random gap below maxGap, then
// (with burst) intensity+1 more at once, through a fresh window, and
// checks each answer against the definition up to the first refusal.
func checkWindow(t *testing.T, rng *rand.Rand, run, intensity int, period time.Duration, n int, maxGap int64, burst bool) {
	t.Helper()
	var times []time.Duration
	now := time.Duration(0)
	for range n {
		now += time.Duration(rng.Int64N(maxGap))
		times = append(times, now)
	}
	if burst {
		for range intensity + 1 {
			times = append(times, now)
		}
	}
	got := supervisor.AddRestarts(times, intensity, period)
	for i, tm := range times {
		n := 0
		for _, u := range times[:i+1] {
			if u >= tm-period {
				n++
			}
		}
		want := n <= intensity
		require.Equal(t, want, got[i], "run %d (intensity %d, period %v): restart %d at %v", run, intensity, period, i, tm)
		if !want {
			return
		}
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

// startsOnce is the spec of a worker id whose first start succeeds and
// every later one fails with err; *starts counts them.
func startsOnce(j *journal, id string, err error) (spec supervisor.ChildSpec, starts *int) {
	starts = new(int)
	return supervisor.ChildSpec{ID: id, Start: func(sc supervisor.StartContext) (actor.Ref, error) {
		if *starts++; *starts > 1 {
			return actor.Ref{}, err
		}
		return sc.Spawn(&worker{id: id, j: j})
	}}, starts
}

// A child whose restart fails is tried again, each try counted: a child
// that cannot start any more takes its supervisor down, and the reason
// says why.
func TestRestartFailureCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, _ := newSystem(t)
		j := new(journal)
		broken := errors.New("database unreachable")
		flaky, starts := startsOnce(j, "db", broken)
		sup := start(t, sys, supervisor.OneForOne, []supervisor.ChildSpec{flaky}, supervisor.WithIntensity(3, time.Minute))
		send(t, refs(t, sup)["db"], exitWith{errCrash})
		reason := waitExit(t, sup)
		var ie *supervisor.IntensityError
		require.ErrorAs(t, reason, &ie)
		var se *supervisor.StartError
		require.ErrorAs(t, ie.Last, &se)
		require.Equal(t, "db", se.Child)
		require.ErrorIs(t, se, broken)
		require.Equal(t, 4, *starts, "the first start, then a restart and two tries again; the next one is too many")
	})
}
