package supervisor

import "time"

// Test seams: the deterministic core, and the jitter's random source.
var (
	BackoffDelay  = backoffDelay
	Group         = group
	ShouldRestart = shouldRestart
	WithRandom    = withRandom
)

// AddRestarts records restarts at times, in order, in a fresh intensity
// window, and returns whether each one was allowed.
func AddRestarts(times []time.Duration, intensity int, period time.Duration) []bool {
	var w window
	ok := make([]bool, len(times))
	for i, t := range times {
		ok[i] = w.add(t, intensity, period)
	}
	return ok
}
