//go:build linux

package upgrade_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkHandoff measures the pause of a state handoff between two real
// processes: from the moment the old process starts pausing its
// connections and suspending its machines to the new process's
// acknowledgement, when every machine runs again there ("pause", as the old
// process logs it), and the whole SIGHUP-to-ready time of the new process
// ("restart"). Each machine owns one connection, which has sent one line.
//
//	go test -run '^$' -bench BenchmarkHandoff -benchtime 5x ./upgrade/
func BenchmarkHandoff(b *testing.B) {
	raiseFileLimit(b)
	// machines=0 is the baseline: the same handoff with nothing to hand
	// over (the new binary's start, the exchange), measured in the same run.
	for _, n := range []int{0, 1000, 10000} {
		name := fmt.Sprintf("machines=%d", n)
		if n == 0 {
			name = "baseline=empty"
		}
		b.Run(name, func(b *testing.B) {
			// On a loaded machine 10,000 connections take more than the
			// tests' 3 s to start a new process with.
			h := startSeqServerWith(b, map[string]string{"upgrade-timeout": "30s"})
			conns := make([]net.Conn, n)
			for i := range conns {
				c, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
				require.NoError(b, err)
				conns[i] = c
				_, err = fmt.Fprintf(c, "1\n")
				require.NoError(b, err)
			}
			for _, c := range conns {
				_, err := bufio.NewReader(c).ReadString('\n')
				require.NoError(b, err)
			}
			b.Cleanup(func() {
				for _, c := range conns {
					_ = c.Close()
				}
			})
			var pause, restart time.Duration
			for b.Loop() {
				old := h.pid()
				start := time.Now()
				h.hup()
				restart += time.Since(start)
				pause += h.lastPause(b, old)
			}
			b.ReportMetric(float64(pause.Microseconds())/1000/float64(b.N), "pause-ms/op")
			b.ReportMetric(float64(restart.Microseconds())/1000/float64(b.N), "restart-ms/op")
			st := h.stats()
			require.Equal(b, n+1, st.machines)
		})
	}
}

var takenRE = regexp.MustCompile(`state taken over" pid=(\d+) .*took=(\S+) steps="?\[([^\]]*)\]`)

var pauseRE = regexp.MustCompile(`state handed over" pid=(\d+) machines=(\d+) conns=(\d+) pause=(\S+) steps="?\[([^\]]*)\]`)

// lastPause returns the pause the process pid logged for its handoff.
func (h *seqHarness) lastPause(tb testing.TB, pid int) time.Duration {
	b, err := os.ReadFile(h.log)
	require.NoError(tb, err)
	for _, m := range pauseRE.FindAllStringSubmatch(string(b), -1) {
		if m[1] == strconv.Itoa(pid) {
			d, err := time.ParseDuration(m[4])
			require.NoError(tb, err)
			var restored string
			for _, t := range takenRE.FindAllStringSubmatch(string(b), -1) {
				if t[1] == strconv.Itoa(h.pid()) {
					restored = t[3]
				}
			}
			tb.Logf("pause %v: paused, imaged, sent at %s; new process: decoded, conns, machines, acknowledged at %s", d, m[5], restored)
			return d
		}
	}
	tb.Fatalf("no handoff logged by %d", pid)
	return 0
}

// raiseFileLimit lifts the soft limit on open files to the hard one, for
// this process and the servers it starts.
func raiseFileLimit(tb testing.TB) {
	var l syscall.Rlimit
	require.NoError(tb, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l))
	l.Cur = l.Max
	require.NoError(tb, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l))
}
