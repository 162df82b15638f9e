package supervisor

// Test seams: the deterministic core, and the jitter's random source.
var (
	AddRestart    = addRestart
	BackoffDelay  = backoffDelay
	Group         = group
	ShouldRestart = shouldRestart
	WithRandom    = withRandom
)
