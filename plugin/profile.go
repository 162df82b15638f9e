package plugin

import (
	"fmt"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
)

// EnvCPUProfile is the environment variable that makes [Serve] write a CPU
// profile of the plugin process: its value is the path, to which Serve
// appends "." and the process id (several processes of one plugin may run
// at once).
const EnvCPUProfile = "HOTLINE_PLUGIN_CPUPROFILE"

// EnvTrace is the environment variable that makes [Serve] write an
// execution trace (runtime/trace) of the plugin process, to its value with
// "." and the process id appended, as [EnvCPUProfile] does. Read it with
// go tool trace.
const EnvTrace = "HOTLINE_PLUGIN_TRACE"

// startProfile starts a CPU profile into path.<pid> if path is not empty,
// and returns what stops it. A profile that cannot be started is reported
// on stderr (the host's log) and the plugin serves on without it.
func startProfile(path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path + "." + strconv.Itoa(os.Getpid()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "plugin: cpu profile:", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "plugin: cpu profile:", err)
		_ = f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "plugin: cpu profile:", err)
		}
	}
}

// startTrace starts an execution trace into path.<pid> if path is not
// empty, and returns what stops it; like startProfile, a trace that cannot
// be started is reported on stderr and the plugin serves on.
func startTrace(path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path + "." + strconv.Itoa(os.Getpid()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "plugin: trace:", err)
		return func() {}
	}
	if err := trace.Start(f); err != nil {
		fmt.Fprintln(os.Stderr, "plugin: trace:", err)
		_ = f.Close()
		return func() {}
	}
	return func() {
		trace.Stop()
		if err := f.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "plugin: trace:", err)
		}
	}
}
