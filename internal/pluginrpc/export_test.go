package pluginrpc

// Parallel lets the external benchmarks (bind_bench_test.go) spread their
// calls as the baselines do.
var Parallel = parallel

// Callers is how many goroutines Parallel uses.
const Callers = callers
