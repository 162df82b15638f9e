package plugin

import (
	"fmt"
	"io"
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
	return record(path, "cpu profile", pprof.StartCPUProfile, pprof.StopCPUProfile)
}

// startTrace starts an execution trace into path.<pid> if path is not
// empty, and returns what stops it, as startProfile does.
func startTrace(path string) (stop func()) {
	return record(path, "trace", trace.Start, trace.Stop)
}

// record runs start on a file path.<pid> if path is not empty, and returns
// what runs end and closes the file. What fails is reported on stderr as
// what, and the plugin serves on.
func record(path, what string, start func(io.Writer) error, end func()) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path + "." + strconv.Itoa(os.Getpid()))
	if err != nil {
		fmt.Fprintf(os.Stderr, "plugin: %s: %v\n", what, err)
		return func() {}
	}
	if err := start(f); err != nil {
		fmt.Fprintf(os.Stderr, "plugin: %s: %v\n", what, err)
		_ = f.Close()
		return func() {}
	}
	return func() {
		end()
		if err := f.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "plugin: %s: %v\n", what, err)
		}
	}
}
