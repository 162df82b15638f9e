// Command idlemem spawns many idle actors and reports the process's peak
// resident memory: what an idle actor costs when a million of them live in
// one process. `make bench` runs it with -n 1000000.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/hotline-go/hotline/actor"
)

type idle struct{}

func (idle) Receive(*actor.Context, any) {}

func main() {
	n := flag.Int("n", 1_000_000, "idle actors to spawn")
	flag.Parse()
	if err := run(*n, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "idlemem:", err)
		os.Exit(1)
	}
}

func run(n int, out io.Writer) error {
	base, err := peakRSS()
	if err != nil {
		return err
	}
	s := actor.NewSystem(actor.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	refs := make([]actor.Ref, n)
	start := time.Now()
	for i := range refs {
		if refs[i], err = s.Spawn(idle{}); err != nil {
			return err
		}
	}
	spawnTime := time.Since(start)
	runtime.GC()
	peak, err := peakRSS()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "idle actors:     %d (alive: %d, goroutines: %d)\n", n, s.Count(), runtime.NumGoroutine())
	fmt.Fprintf(out, "spawn time:      %v (%.0f ns/actor)\n", spawnTime.Round(time.Millisecond), float64(spawnTime.Nanoseconds())/float64(n))
	fmt.Fprintf(out, "peak RSS:        %.1f MB (%.1f MB before spawning; goal <= 400 MB)\n", float64(peak)/1e6, float64(base)/1e6)
	fmt.Fprintf(out, "RSS per actor:   %.0f B\n", float64(peak-base)/float64(n))
	runtime.KeepAlive(refs)
	return s.Shutdown(context.Background())
}

// peakRSS reads VmHWM, the peak resident set size, from /proc.
func peakRSS() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err != nil {
				return 0, fmt.Errorf("parse VmHWM %q: %w", v, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}
