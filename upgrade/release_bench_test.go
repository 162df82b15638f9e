package upgrade_test

import (
	"context"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	tm "github.com/hotline-go/hotline/internal/plugintest/machine"
	"github.com/hotline-go/hotline/upgrade"
)

// BenchData is about 200 bytes of msgpack.
type BenchData struct {
	Name    string
	Numbers []int
	Blob    []byte
}

type BenchDataV2 struct {
	Name    string
	Numbers []int
	Blob    []byte
	Gen     int
}

func benchV1() *fsm.Machine[BenchData] {
	m := fsm.Define("bench", "v1", "on", BenchData{})
	m.InitFunc(func(id string) (string, BenchData) {
		return "on", BenchData{Name: id, Numbers: []int{1, 2, 3, 4, 5, 6, 7, 8}, Blob: make([]byte, 150)}
	})
	fsm.On(m, "on", func(_ Get, d BenchData) fsm.Result[BenchData] { return fsm.Keep(d, fsm.Reply(len(d.Name))) })
	return m
}

func benchV2() *fsm.Machine[BenchDataV2] {
	m := fsm.Define("bench", "v2", "on", BenchDataV2{})
	fsm.On(m, "on", func(_ Get, d BenchDataV2) fsm.Result[BenchDataV2] { return fsm.Keep(d, fsm.Reply(d.Gen)) })
	m.OnUpgrade(func(from, state string, raw msgpack.RawMessage) (string, BenchDataV2, error) {
		var d BenchDataV2
		err := msgpack.Unmarshal(raw, &d)
		d.Gen = 2
		return state, d, err
	})
	m.OnDowngrade(func(to, state string, d BenchDataV2) (string, any, error) {
		return state, BenchData{Name: d.Name, Numbers: d.Numbers, Blob: d.Blob}, nil
	})
	return m
}

// BenchmarkUpgrade10k upgrades 10,000 live machines all at once (the
// consistent cut) while four clients call random machines, and reports the
// total time of the upgrade, the longest suspension of any machine, and
// the p99 of the clients' call latency during the upgrades over the p99
// before them. Each iteration is one upgrade v1 -> v2; the rollback that
// sets up the next one is not timed.
func BenchmarkUpgrade10k(b *testing.B) { benchUpgrade10k(b, nil) }

// BenchmarkUpgrade10kRolling is [BenchmarkUpgrade10k] with the machines
// moved in rolling batches of 256, each suspended only for its own change
// (twice: see fsm.Stager). It also reports the median and the 99.9th
// percentile of the machines' pauses (pause-p50-us, pause-p999-us; a
// machine's pause is its two suspensions together), how many were over
// 1 ms, and the same for as many windows of the median pause's length in
// which nothing is done (null-maxpause-us, null-pauses>1ms: the host's own
// stalls of a running thread, the baseline of maxpause-us; see
// pauseLog.null).
func BenchmarkUpgrade10kRolling(b *testing.B) {
	benchUpgrade10k(b, nil, upgrade.WithStrategy(upgrade.Rolling(256)))
}

// BenchmarkUpgrade10kRollingOneSuspension is [BenchmarkUpgrade10kRolling]
// with each machine moved in one suspension, the whole change inside it:
// the baseline of the two short suspensions.
func BenchmarkUpgrade10kRollingOneSuspension(b *testing.B) {
	benchUpgrade10k(b, []upgrade.ReleaseOption{upgrade.RollingInOneSuspension()}, upgrade.WithStrategy(upgrade.Rolling(256)))
}

func benchUpgrade10k(b *testing.B, ropts []upgrade.ReleaseOption, opts ...upgrade.MoveOption) {
	const n = 10_000
	ctx := context.Background()
	pauses := &pauseLog{}
	h := benchHandler(b, []fsm.Code{benchV1(), benchV2()}, append(ropts, upgrade.RollingPauseObserver(pauses.observe))...)
	var err error
	refs := make([]actor.Ref, n)
	for i := range refs {
		if refs[i], err = h.Start(ctx, "bench", fsm.WithID(fmt.Sprintf("machine-%05d", i))); err != nil {
			b.Fatal(err)
		}
	}
	pauses.size(n * b.N)
	measureUpgrade10k(b, h, "bench", refs, Get{}, pauses, opts...)
	pauses.report(b)
}

// A pauseLog records the pauses of the machines of the timed upgrades,
// in room made before the timer starts, so that recording allocates
// nothing.
type pauseLog struct {
	on            atomic.Bool
	next          atomic.Int64
	stage, commit []time.Duration
	pause         []time.Duration // stage+commit, sorted (see sorted)
}

func (l *pauseLog) size(n int) {
	l.stage, l.commit = make([]time.Duration, n), make([]time.Duration, n)
}

func (l *pauseLog) observe(stage, commit time.Duration) {
	if !l.on.Load() {
		return
	}
	if i := l.next.Add(1) - 1; i < int64(len(l.stage)) {
		l.stage[i], l.commit[i] = stage, commit
	}
}

// null measures the pauses' baseline: what the host does to a window of
// the same length in which no machine is touched. As many windows as the
// upgrades had, each of the median pause's length, are spent spinning on
// the clock, by as many goroutines as a rolling upgrade's workers, each
// yielding its time slice every 2 ms as they do, with 5 µs of spinning
// between windows; it reports the longest (null-maxpause-us) and how many
// took over 1 ms (null-pauses>1ms). A window is stretched only by what
// stops its thread: the Go scheduler, the collector (the clients still
// allocate), the operating system, or the hypervisor taking the virtual
// CPU away.
func (l *pauseLog) null(b *testing.B) {
	pause, _, _ := l.sorted()
	n := len(pause)
	if n == 0 {
		return
	}
	w := pause[n/2]
	spin := func(d time.Duration) time.Duration {
		t0 := time.Now()
		for {
			if e := time.Since(t0); e >= d {
				return e
			}
		}
	}
	workers := 4 * runtime.GOMAXPROCS(0)
	var next atomic.Int64
	var worst atomic.Int64
	var long atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			since := time.Now()
			for next.Add(1) <= int64(n) {
				if time.Since(since) >= 2*time.Millisecond {
					runtime.Gosched()
					since = time.Now()
				}
				d := spin(w)
				if d >= time.Millisecond {
					long.Add(1)
				}
				for m := worst.Load(); int64(d) > m && !worst.CompareAndSwap(m, int64(d)); m = worst.Load() {
				}
				spin(5 * time.Microsecond)
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(time.Duration(worst.Load()).Microseconds()), "null-maxpause-us")
	b.ReportMetric(float64(long.Load()), "null-pauses>1ms")
}

// sorted returns the recorded pauses (a machine's two suspensions
// together) and each suspension apart, each sorted; made once, when the
// upgrades have ended.
func (l *pauseLog) sorted() (pause, stage, commit []time.Duration) {
	if l.pause == nil {
		n := min(int(l.next.Load()), len(l.stage))
		l.pause = make([]time.Duration, n)
		for i := range l.pause {
			l.pause[i] = l.stage[i] + l.commit[i]
		}
		l.stage, l.commit = l.stage[:n], l.commit[:n]
		for _, ds := range [][]time.Duration{l.pause, l.stage, l.commit} {
			slices.Sort(ds)
		}
	}
	return l.pause, l.stage, l.commit
}

// report reports the median and the 99.9th percentile of the pauses (a
// machine's two suspensions together), and the medians of each
// suspension, if any were recorded (a rolling upgrade).
func (l *pauseLog) report(b *testing.B) {
	pause, stage, commit := l.sorted()
	n := len(pause)
	if n == 0 {
		return
	}
	us := func(sorted []time.Duration, q float64) float64 {
		return float64(sorted[int(float64(len(sorted)-1)*q)].Nanoseconds()) / 1e3
	}
	b.ReportMetric(us(pause, 0.5), "pause-p50-us")
	b.ReportMetric(us(pause, 0.999), "pause-p999-us")
	long := len(pause) - sort.Search(len(pause), func(i int) bool { return pause[i] >= time.Millisecond })
	b.ReportMetric(float64(long), "pauses>1ms")
	if commit[n-1] > 0 {
		b.ReportMetric(us(stage, 0.5), "stage-p50-us")
		b.ReportMetric(us(commit, 0.5), "commit-p50-us")
	}
}

// BenchmarkUpgrade10kPlugin is [BenchmarkUpgrade10k] with plugin-hosted
// machines: v1 and v2 of internal/plugintest's counter, each in its own
// plugin binary (built by the benchmark, registered by ScanPlugins), the
// data about 200 bytes (a 150-byte blob, a count, a list of strings).
// Every event and every UPGRADE is a round trip to a plugin process.
func BenchmarkUpgrade10kPlugin(b *testing.B) {
	const n = 10_000
	ctx := context.Background()
	bins := buildTestPlugins(b, b.TempDir())
	dir := pluginDir(b, map[string]string{"counter-v1": bins.v1, "counter-v2": bins.v2})
	h := benchHandler(b, nil, quietPlugins())
	var err error
	if _, err := h.ScanPlugins(ctx, dir); err != nil {
		b.Fatal(err)
	}
	refs := make([]actor.Ref, n)
	blob := make([]byte, 150)
	for i := range refs {
		if refs[i], err = h.Start(ctx, "counter", fsm.WithID(fmt.Sprintf("machine-%05d", i))); err != nil {
			b.Fatal(err)
		}
		if _, err := fsm.Call(ctx, refs[i], tm.Pad{Blob: blob, Note: "x"}); err != nil {
			b.Fatal(err)
		}
	}
	measureUpgrade10k(b, h, "counter", refs, tm.Get{}, nil)
}

// measureUpgrade10k upgrades machine to v2 b.N times (rolling back, not
// timed, between) while four clients call random machines with get.
// pauses, if not nil, records the pauses of the timed upgrades.
func measureUpgrade10k(b *testing.B, h *upgrade.ReleaseHandler, machine string, refs []actor.Ref, get any, pauses *pauseLog, opts ...upgrade.MoveOption) {
	const clients = 4
	ctx := context.Background()
	n := len(refs)
	var phase atomic.Int32 // 0: before, 1: during an upgrade, 2: other
	var mu sync.Mutex
	var before, during latencies
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(c), 1))
			mine := new([2]latencies)
			defer func() {
				mu.Lock()
				before.merge(&mine[0])
				during.merge(&mine[1])
				mu.Unlock()
			}()
			for {
				select {
				case <-stop:
					return
				default:
				}
				p := phase.Load()
				t0 := time.Now()
				if _, err := fsm.Call(ctx, refs[rnd.IntN(n)], get); err != nil {
					b.Error(err)
					return
				}
				if d := time.Since(t0); p < 2 && phase.Load() == p {
					mine[p].add(d)
				}
			}
		})
	}
	// Warm up, and measure the latency before any upgrade.
	time.Sleep(200 * time.Millisecond) // a benchmark's load window, not a synchronisation
	phase.Store(2)

	var total, maxPause time.Duration
	var ms runtime.MemStats
	var gcs uint32 // garbage collections during the upgrades
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		phase.Store(1)
		if pauses != nil {
			runtime.ReadMemStats(&ms)
			gcs -= ms.NumGC
			pauses.on.Store(true)
		}
		rep, err := h.Upgrade(ctx, machine, "v2", opts...)
		if pauses != nil {
			pauses.on.Store(false)
			runtime.ReadMemStats(&ms)
			gcs += ms.NumGC
		}
		phase.Store(2)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Changed != n {
			b.Fatalf("changed %d machines of %d", rep.Changed, n)
		}
		total += rep.Total
		maxPause = max(maxPause, rep.MaxPause)
		b.StopTimer()
		if _, err := h.Rollback(ctx, machine, opts...); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	if pauses != nil {
		// The baseline of the pauses, under the same clients: as many
		// windows of the median pause's length, spent spinning.
		pauses.null(b)
	}
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "total-ms")
	b.ReportMetric(float64(maxPause.Microseconds()), "maxpause-us")
	if pauses != nil {
		b.ReportMetric(float64(gcs)/float64(b.N), "gcs/upgrade")
	}
	if p := before.p99(); p > 0 && during.count() > 0 {
		b.ReportMetric(float64(during.p99())/float64(p), "p99-ratio")
	}
}

// latencies is a histogram of durations in log-linear buckets: exact
// below 256 ns, then 128 buckets per power of two, so that a value is
// known within 1%. Recording allocates nothing: the clients record every
// call, and a growing list of them would start some of the collections
// whose effect on the pauses the benchmark measures.
type latencies struct{ n [58 * 128]uint64 }

func latencyBucket(d time.Duration) int {
	v := uint64(max(d, 0))
	if v < 256 {
		return int(v)
	}
	e := bits.Len64(v) - 8 // v>>e is in [128, 256)
	return (e+1)*128 + int(v>>e) - 128
}

// bucketFloor is the least duration of bucket i.
func bucketFloor(i int) time.Duration {
	if i < 256 {
		return time.Duration(i)
	}
	e := i/128 - 1
	return time.Duration(uint64(i%128+128) << e)
}

func (l *latencies) add(d time.Duration) { l.n[latencyBucket(d)]++ }

func (l *latencies) merge(o *latencies) {
	for i, c := range o.n {
		l.n[i] += c
	}
}

func (l *latencies) count() uint64 {
	var t uint64
	for _, c := range l.n {
		t += c
	}
	return t
}

// p99 is the floor of the bucket of the 99th percentile: the value at
// index count*99/100 of the sorted durations, within 1%.
func (l *latencies) p99() time.Duration {
	k := l.count() * 99 / 100
	var seen uint64
	for i, c := range l.n {
		if seen += c; seen > k {
			return bucketFloor(i)
		}
	}
	return 0
}

// benchHandler returns a release handler, on a System of its own, with
// codes registered; both are closed when the benchmark ends.
func benchHandler(b *testing.B, codes []fsm.Code, opts ...upgrade.ReleaseOption) *upgrade.ReleaseHandler {
	b.Helper()
	sys := actor.NewSystem(actor.WithLogger(quiet()))
	h, err := upgrade.NewReleaseHandler(sys, append([]upgrade.ReleaseOption{upgrade.WithReleaseLogger(quiet())}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := h.Close(context.Background()); err != nil {
			b.Error(err)
		}
		if err := sys.Shutdown(context.Background()); err != nil {
			b.Error(err)
		}
	})
	for _, c := range codes {
		if err := h.Register(c); err != nil {
			b.Fatal(err)
		}
	}
	return h
}
