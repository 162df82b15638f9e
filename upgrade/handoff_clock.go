//go:build unix

package upgrade

import "golang.org/x/sys/unix"

// monotonicNow reads the host's CLOCK_MONOTONIC, in nanoseconds: a clock
// that the old and the new process of a binary restart read alike (the
// monotonic reading of a time.Time counts from its own process's start),
// and that no change of the wall clock moves. It returns 0 if the clock
// cannot be read: a handoff then carries no capture instant.
func monotonicNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano()
}
