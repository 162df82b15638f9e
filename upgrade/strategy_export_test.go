package upgrade

import "time"

// RollingPauseObserver makes f get, for each machine a rolling worker
// moves, how long each of its two suspensions lasted (commit is 0 with
// [RollingInOneSuspension]). f runs on the worker, after the machine is
// resumed.
func RollingPauseObserver(f func(stage, commit time.Duration)) ReleaseOption {
	return func(c *releaseConfig) { c.observePause = f }
}

// RollingInOneSuspension makes a rolling worker move each machine in one
// suspension, the whole change inside it (as before fsm.Stager): the
// baseline of BenchmarkUpgrade10kRollingOneSuspension.
func RollingInOneSuspension() ReleaseOption {
	return func(c *releaseConfig) { c.oneWindow = true }
}
