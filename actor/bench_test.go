package actor_test

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"testing"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/actor/actortest"
)

// The baselines and the actor benchmarks are paired by name: run them in
// one `go test -bench` invocation and compare ns/op as ratios.

// BenchmarkChannelBaseline: one goroutine draining a buffered channel.
func BenchmarkChannelBaseline(b *testing.B) {
	ch := make(chan int, 1024)
	done := make(chan int)
	go func() {
		n := 0
		for range ch {
			n++
		}
		done <- n
	}()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ch <- i
	}
	close(ch)
	if n := <-done; n != b.N {
		b.Fatalf("drained %d of %d", n, b.N)
	}
}

// BenchmarkActorSend: one sender, one actor, small messages.
func BenchmarkActorSend(b *testing.B) { actortest.SendBaseline(b) }

// BenchmarkChannelPingPong: a request and its reply over two unbuffered
// channels between two goroutines.
func BenchmarkChannelPingPong(b *testing.B) {
	req, resp := make(chan int), make(chan int)
	go func() {
		for v := range req {
			resp <- v
		}
	}()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req <- i & 0xff
		<-resp
	}
	close(req)
}

// BenchmarkActorCall: request and reply from outside an actor, with a
// context.
func BenchmarkActorCall(b *testing.B) { actortest.CallBaseline(context.Background(), b) }

// BenchmarkActorCallTimeout is BenchmarkActorCall with a cancellable
// context, the usual case in servers.
func BenchmarkActorCallTimeout(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	actortest.CallBaseline(ctx, b)
}

// BenchmarkActorIdle reports the heap and stack in use per idle actor, with
// the System and every actor alive.
func BenchmarkActorIdle(b *testing.B) {
	const n = 100_000
	for i := 0; i < b.N; i++ {
		s := actor.NewSystem(actor.WithLogger(slog.New(slog.DiscardHandler)))
		refs := make([]actor.Ref, 0, n)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for j := 0; j < n; j++ {
			r, err := s.Spawn(actortest.Idle{})
			if err != nil {
				b.Fatal(err)
			}
			refs = append(refs, r)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		used := float64(after.HeapInuse+after.StackInuse) - float64(before.HeapInuse+before.StackInuse)
		// refs itself is n × 8 bytes of the caller's, not the actors'.
		b.ReportMetric((used-float64(cap(refs)*8))/n, "B/actor")
		runtime.KeepAlive(refs)
		if s.Count() != n {
			b.Fatalf("%d actors alive, want %d", s.Count(), n)
		}
		if err := s.Shutdown(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkActorSpawn: ns per spawn of an idle actor.
func BenchmarkActorSpawn(b *testing.B) { actortest.SpawnBaseline(b) }

// BenchmarkActorFanIn: 8 senders, one actor.
func BenchmarkActorFanIn(b *testing.B) { actortest.FanInBaseline(b, 8) }

// BenchmarkMutexBaseline: a sync.Mutex taken and let go twice, the floor
// under BenchmarkActorSuspendResume (each of its two requests takes the
// actor's lock once).
func BenchmarkMutexBaseline(b *testing.B) {
	var mu sync.Mutex
	n := 0
	for i := 0; i < b.N; i++ {
		mu.Lock()
		n++
		mu.Unlock()
		mu.Lock()
		n--
		mu.Unlock()
	}
	if n != 0 {
		b.Fatal(n)
	}
}

// BenchmarkActorSuspendResume: one Suspend and its Resume of an idle
// actor, both counted under its lock (the release handler's cut of many
// idle machines).
func BenchmarkActorSuspendResume(b *testing.B) {
	s := actor.NewSystem()
	b.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			b.Error(err)
		}
	})
	r, err := s.Spawn(actor.BehaviorFunc(func(*actor.Context, any) {}))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := actor.Suspend(ctx, r); err != nil {
			b.Fatal(err)
		}
		if err := actor.Resume(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}
