package pluginrpc

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// meterCPU starts measuring the CPU time (user and system) of this process
// and of the process peer (0: none); the returned func reports both per
// operation, as host-cpu-ns/op and peer-cpu-ns/op. CPU time is steadier
// than wall time on a shared machine: it does not count the time spent
// waiting for a processor. The peer's is read from /proc in clock ticks
// (10 ms), so run enough operations for a second or more.
//
// It also reports the voluntary context switches per operation of each
// process (host-sleeps/op, peer-sleeps/op): how often a thread went to
// sleep (in epoll_wait, futex, nanosleep) and had to be woken. That count
// does not depend on how loaded the machine is, and each sleep is a
// wake-up that costs a few µs of system time and latency.
func meterCPU(b *testing.B, peer int) func() {
	b.Helper()
	host0, peer0 := selfCPU(), procCPU(peer)
	hostSw0, peerSw0 := selfSleeps(), procSleeps(peer)
	return func() {
		if b.N == 0 {
			return
		}
		b.ReportMetric(float64(selfCPU()-host0)/float64(b.N), "host-cpu-ns/op")
		b.ReportMetric(float64(selfSleeps()-hostSw0)/float64(b.N), "host-sleeps/op")
		if peer != 0 {
			b.ReportMetric(float64(procCPU(peer)-peer0)/float64(b.N), "peer-cpu-ns/op")
			b.ReportMetric(float64(procSleeps(peer)-peerSw0)/float64(b.N), "peer-sleeps/op")
		}
	}
}

// selfSleeps is this process's count of voluntary context switches, all
// threads included.
func selfSleeps() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Nvcsw
}

// procSleeps is the sum over the threads of process pid of their voluntary
// context switches (from /proc/<pid>/task/*/status); 0 if pid is 0. A Go
// program's threads live as long as it does, so none is missed.
func procSleeps(pid int) int64 {
	if pid == 0 {
		return 0
	}
	dir := "/proc/" + strconv.Itoa(pid) + "/task/"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, t := range tasks {
		b, err := os.ReadFile(dir + t.Name() + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
				k, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				if err == nil {
					n += k
				}
			}
		}
	}
	return n
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is the CPU time of process pid, from /proc/<pid>/stat; 0 if it
// cannot be read.
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command may hold spaces: the fields start after its last ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return time.Duration(utime+stime) * tick
}
