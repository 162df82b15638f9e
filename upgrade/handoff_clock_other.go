//go:build !unix

package upgrade

// monotonicNow has no clock shared between processes to read here: a
// handoff carries no capture instant.
func monotonicNow() int64 { return 0 }
