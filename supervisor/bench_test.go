package supervisor_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/supervisor"
)

// Run the baseline and the restart in one invocation and compare ns/op:
//
//	go test -run '^$' -bench . -benchmem ./supervisor/
//
// Nothing is logged: a disabled logger costs nothing, and what is
// measured is the supervision, not the log handler.
//
// Besides ns/op (wall time), each benchmark reports cpu-ns/op: the CPU
// time the whole process used per op, on all its threads. On a shared,
// loaded machine wall time includes waiting for a core; CPU time does not,
// and it shows how much of an op is work and how much is hand-off latency.

// cpuClock adds up the process's CPU time while it runs, to report
// cpu-ns/op beside the timer's ns/op.
type cpuClock struct {
	total, since time.Duration
	ok           bool
}

func (c *cpuClock) start() { c.since, c.ok = cpuTime() }

func (c *cpuClock) stop() {
	if now, ok := cpuTime(); ok && c.ok {
		c.total += now - c.since
	}
}

func (c *cpuClock) report(b *testing.B) {
	c.stop()
	if c.ok && b.N > 0 {
		b.ReportMetric(float64(c.total)/float64(b.N), "cpu-ns/op")
	}
}

func quietSystem(b *testing.B) *actor.System {
	s := actor.NewSystem(actor.WithLogger(slog.New(slog.DiscardHandler)))
	b.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			b.Error(err)
		}
	})
	return s
}

// crasher is the child of the benchmarks: it has an Init, as most
// children do, and exits abnormally on any message.
type crasher struct{}

func (crasher) Init(*actor.Context) error       { return nil }
func (crasher) Receive(c *actor.Context, _ any) { c.Stop(errCrash) }
func (crasher) Terminate(*actor.Context, error) {}

// BenchmarkSpawnBaseline is the plain-actor baseline.
//
// spawn: ns to spawn one actor with an Init: Spawn starts no goroutine
// and crosses none, so this is the cheapest thing a System does.
//
// life: ns for the whole life of one actor, done by hand: spawn it, send
// it the message that makes it exit abnormally, and wait for its exit.
// A restart does the same work (one child exits, another is spawned), plus
// the supervision: so this is the baseline that BenchmarkRestart is
// compared with.
//
// handoff: ns for the goroutine switches that any restart observed from
// outside pays, and nothing else: the benchmark goroutine hands a token to
// a parked goroutine (as Send hands a crashed child to a parked worker)
// and waits on a channel until that goroutine hands one back (as the
// restarted child's Start hands its Ref back). No actor is involved.
//
// floor: handoff with a spawn on the other goroutine before it hands the
// token back: the least any restart observed from outside does (the crash
// reaches another goroutine, a new actor is spawned there, its Ref comes
// back), without the crash, the exit, or any supervision.
func BenchmarkSpawnBaseline(b *testing.B) {
	b.Run("spawn", func(b *testing.B) {
		var cpu cpuClock
		sys := newBatches(b, &cpu)
		cpu.start()
		for b.Loop() {
			if _, err := sys.next().Spawn(crasher{}); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		cpu.report(b)
		sys.close()
	})
	b.Run("life", func(b *testing.B) {
		s := quietSystem(b)
		ctx := context.Background()
		var cpu cpuClock
		cpu.start()
		for b.Loop() {
			r, err := s.Spawn(crasher{})
			if err != nil {
				b.Fatal(err)
			}
			if err := actor.Send(r, "crash"); err != nil {
				b.Fatal(err)
			}
			if _, err := actor.Wait(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
		cpu.report(b)
	})
	b.Run("handoff", func(b *testing.B) {
		to, back, quit := make(chan struct{}), make(chan struct{}, 1), make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-to:
					back <- struct{}{}
				case <-quit:
					return
				}
			}
		}()
		var cpu cpuClock
		cpu.start()
		for b.Loop() {
			to <- struct{}{}
			<-back
		}
		cpu.report(b)
		close(quit)
		<-done
	})
	b.Run("floor", func(b *testing.B) {
		to, back, quit := make(chan *actor.System), make(chan actor.Ref, 1), make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case s := <-to:
					r, err := s.Spawn(crasher{})
					if err != nil {
						b.Error(err)
					}
					back <- r
				case <-quit:
					return
				}
			}
		}()
		var cpu cpuClock
		sys := newBatches(b, &cpu)
		cpu.start()
		for b.Loop() {
			to <- sys.next()
			<-back
		}
		b.StopTimer()
		cpu.report(b)
		close(quit)
		<-done
		sys.close()
	})
}

// batches gives a spawning benchmark a fresh System every batch spawns,
// the last one shut down off the clock (and off cpu's), so that a growing
// heap of live actors does not weigh on the figure.
type batches struct {
	b   *testing.B
	cpu *cpuClock
	s   *actor.System
	n   int
}

const batch = 4096

func newBatches(b *testing.B, cpu *cpuClock) *batches {
	return &batches{b: b, cpu: cpu, s: actor.NewSystem(actor.WithLogger(slog.New(slog.DiscardHandler)))}
}

// next returns the System to spawn the next actor in.
func (x *batches) next() *actor.System {
	if x.n++; x.n == batch {
		x.b.StopTimer()
		x.cpu.stop()
		x.close()
		x.s = actor.NewSystem(actor.WithLogger(slog.New(slog.DiscardHandler)))
		x.n = 0
		x.cpu.start()
		x.b.StartTimer()
	}
	return x.s
}

func (x *batches) close() {
	if err := x.s.Shutdown(context.Background()); err != nil {
		x.b.Fatal(err)
	}
}

// BenchmarkRestart: the child of a one-for-one supervisor crashes and is
// restarted; one op is from the crash message sent to the running child
// until the supervisor has started the new child and its Start function
// has handed its Ref to the benchmark. Every restart is counted and kept
// in the intensity window (b.N+1 restarts in an hour), so the
// bookkeeping is measured at its fullest.
func BenchmarkRestart(b *testing.B) {
	s := quietSystem(b)
	started := make(chan actor.Ref, 1)
	child := supervisor.ChildSpec{ID: "child", Start: func(sc supervisor.StartContext) (actor.Ref, error) {
		r, err := sc.Spawn(crasher{})
		if err == nil {
			started <- r
		}
		return r, err
	}}
	_, err := supervisor.Start(s, supervisor.OneForOne, []supervisor.ChildSpec{child},
		supervisor.WithIntensity(b.N+1, time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	r := <-started
	var cpu cpuClock
	cpu.start()
	b.ResetTimer()
	for range b.N {
		if err := actor.Send(r, "crash"); err != nil {
			b.Fatal(err)
		}
		r = <-started
	}
	b.StopTimer()
	cpu.report(b)
}
