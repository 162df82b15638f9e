package pluginrpc

import "time"

// Parallel lets the external benchmarks (bind_bench_test.go) spread their
// calls as the baselines do.
var Parallel = parallel

// Callers is how many goroutines Parallel uses.
const Callers = callers

// manualTimer is an idle stop that fires when the test says so.
type manualTimer struct {
	f       func()
	stopped bool
}

func (m *manualTimer) Stop() bool { m.stopped = true; return true }

// manualIdleStops replaces afterFunc for the test: each armed stop is
// recorded, with the delay asked for, and fires only when called.
func manualIdleStops(t interface{ Cleanup(func()) }) (armed *[]*manualTimer, delays *[]time.Duration) {
	var ts []*manualTimer
	var ds []time.Duration
	old := afterFunc
	afterFunc = func(d time.Duration, f func()) stopTimer {
		m := &manualTimer{f: f}
		ts = append(ts, m)
		ds = append(ds, d)
		return m
	}
	t.Cleanup(func() { afterFunc = old })
	return &ts, &ds
}

// MeterCPU lets the external benchmarks report CPU per operation.
var MeterCPU = meterCPU

// BenchConns lets the external benchmarks size the pool as the internal
// ones do (HOTLINE_BENCH_CONNS).
var BenchConns = benchConns
