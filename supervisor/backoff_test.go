package supervisor_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/supervisor"
)

func TestBackoffDelay(t *testing.T) {
	const s = time.Second
	tests := []struct {
		name     string
		min, max time.Duration
		step     int
		jitter   float64
		u        float64
		want     time.Duration
	}{
		{"no backoff", 0, 0, 3, 0, 0, 0},
		{"first", s, 8 * s, 1, 0, 0, s},
		{"doubles", s, 8 * s, 3, 0, 0, 4 * s},
		{"capped", s, 8 * s, 10, 0, 0, 8 * s},
		{"capped not a power of two", s, 5 * s, 4, 0, 0, 5 * s},
		{"no overflow", s, 8 * s, 1000, 0, 0, 8 * s},
		{"jitter stretches", s, 8 * s, 2, 0.5, 0.5, 2500 * time.Millisecond},
		{"jitter can pass max", s, 8 * s, 10, 0.5, 0.999, 8*s + 3996*time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, supervisor.BackoffDelay(tt.min, tt.max, tt.step, tt.jitter, tt.u))
		})
	}
}

// The k-th consecutive restart waits min·2^(k−1), capped at max; a child
// that ran for max starts again from min.
func TestBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, _ := newSystem(t)
		j := new(journal)
		sup := start(t, sys, supervisor.OneForOne, specs(j, supervisor.Permanent, "a"),
			supervisor.WithIntensity(100, time.Minute), supervisor.WithBackoff(time.Second, 4*time.Second))
		crashAndWait := func(want time.Duration) {
			t.Helper()
			send(t, refs(t, sup)["a"], exitWith{errCrash})
			synctest.Wait()
			advance(want - time.Nanosecond)
			require.Equal(t, supervisor.Restarting, which(t, sup)[0].Status, "still waiting just before %v", want)
			advance(time.Nanosecond)
			require.Equal(t, supervisor.Running, which(t, sup)[0].Status, "restarted after %v", want)
		}
		crashAndWait(time.Second)
		crashAndWait(2 * time.Second)
		crashAndWait(4 * time.Second)
		crashAndWait(4 * time.Second)
		advance(4 * time.Second) // a run as long as max: the trouble is over
		crashAndWait(time.Second)
	})
}

func TestBackoffJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, _ := newSystem(t)
		j := new(journal)
		sup := start(t, sys, supervisor.OneForOne, specs(j, supervisor.Permanent, "a"),
			supervisor.WithBackoff(time.Second, 4*time.Second), supervisor.WithJitter(0.5),
			supervisor.WithRandom(func() float64 { return 0.5 }))
		send(t, refs(t, sup)["a"], exitWith{errCrash})
		synctest.Wait()
		advance(1250*time.Millisecond - time.Nanosecond)
		require.Equal(t, supervisor.Restarting, which(t, sup)[0].Status)
		advance(time.Nanosecond)
		require.Equal(t, supervisor.Running, which(t, sup)[0].Status)
	})
}

// Restarts are counted when the child exits, not when the delay ends: a
// crash loop reaches the intensity on the crash that is one too many, at
// once, and a backoff does not hide it.
func TestBackoffKeepsTheIntensityWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, _ := newSystem(t)
		j := new(journal)
		sup := start(t, sys, supervisor.OneForOne, specs(j, supervisor.Permanent, "a"),
			supervisor.WithIntensity(2, 10*time.Second), supervisor.WithBackoff(time.Second, time.Second))
		t0 := time.Now()
		for range 2 {
			send(t, refs(t, sup)["a"], exitWith{errCrash})
			advance(time.Second)
		}
		send(t, refs(t, sup)["a"], exitWith{errCrash})
		require.ErrorIs(t, waitExit(t, sup), supervisor.ErrTooManyRestarts)
		require.Equal(t, 2*time.Second, time.Since(t0), "the third crash within 10 s stops the supervisor at once")
	})
}

// With one-for-all, the group is stopped at once and started again
// after the delay.
func TestBackoffOneForAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, _ := newSystem(t)
		j := new(journal)
		sup := start(t, sys, supervisor.OneForAll, specs(j, supervisor.Permanent, "a", "b"),
			supervisor.WithBackoff(time.Second, time.Second))
		j.take()
		send(t, refs(t, sup)["a"], exitWith{errCrash})
		synctest.Wait()
		require.Equal(t, []string{"stop a: crash", "stop b: actor: shutdown"}, j.take())
		children := which(t, sup)
		require.Equal(t, supervisor.Restarting, children[0].Status)
		require.Equal(t, supervisor.Stopped, children[1].Status)
		advance(time.Second)
		require.Equal(t, []string{"start a", "start b"}, j.take())
	})
}
