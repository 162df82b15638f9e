//go:build !unix

package supervisor_test

import "time"

func cpuTime() (time.Duration, bool) { return 0, false }
