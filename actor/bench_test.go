package actor_test

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"testing"

	"github.com/hotline-go/hotline/actor"
)

// The baselines and the actor benchmarks are paired by name: run them in
// one `go test -bench` invocation and compare ns/op as ratios.

func quietSystem() *actor.System {
	return actor.NewSystem(actor.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
}

func shutdown(b testing.TB, s *actor.System) {
	if err := s.Shutdown(context.Background()); err != nil {
		b.Fatal(err)
	}
}

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

type counter struct {
	n    int
	want int
	done chan struct{}
}

func (c *counter) Receive(_ *actor.Context, _ any) {
	if c.n++; c.n == c.want {
		close(c.done)
	}
}

// BenchmarkActorSend: one sender, one actor, small messages.
func BenchmarkActorSend(b *testing.B) {
	s := quietSystem()
	defer shutdown(b, s)
	c := &counter{want: b.N, done: make(chan struct{})}
	r, err := s.Spawn(c)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := actor.Send(r, i&0xff); err != nil {
			b.Fatal(err)
		}
	}
	<-c.done
}

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

type echo struct{}

func (echo) Receive(c *actor.Context, msg any) { c.Reply(msg) }

// BenchmarkActorCall: request and reply from outside an actor, with a
// context.
func BenchmarkActorCall(b *testing.B) {
	s := quietSystem()
	defer shutdown(b, s)
	r, err := s.Spawn(echo{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := actor.Call(ctx, r, i&0xff); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkActorCallTimeout is BenchmarkActorCall with a cancellable
// context, the usual case in servers.
func BenchmarkActorCallTimeout(b *testing.B) {
	s := quietSystem()
	defer shutdown(b, s)
	r, err := s.Spawn(echo{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := actor.Call(ctx, r, i&0xff); err != nil {
			b.Fatal(err)
		}
	}
}

type idle struct{}

func (idle) Receive(*actor.Context, any) {}

// BenchmarkActorIdle reports the heap and stack in use per idle actor, with
// the System and every actor alive.
func BenchmarkActorIdle(b *testing.B) {
	const n = 100_000
	for i := 0; i < b.N; i++ {
		s := quietSystem()
		refs := make([]actor.Ref, 0, n)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for j := 0; j < n; j++ {
			r, err := s.Spawn(idle{})
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
		shutdown(b, s)
	}
}

// BenchmarkActorSpawn: ns per spawn of an idle actor.
func BenchmarkActorSpawn(b *testing.B) {
	s := quietSystem()
	defer shutdown(b, s)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Spawn(idle{}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
}

// BenchmarkActorFanIn: 8 senders, one actor.
func BenchmarkActorFanIn(b *testing.B) {
	const senders = 8
	s := quietSystem()
	defer shutdown(b, s)
	per := b.N/senders + 1
	c := &counter{want: per * senders, done: make(chan struct{})}
	r, err := s.Spawn(c)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for i := 0; i < per; i++ {
				if err := actor.Send(r, i&0xff); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	<-c.done
}
