package actortest

import (
	"context"
	"sync"
	"testing"

	"github.com/hotline-go/hotline/actor"
)

// The actor baselines, for benchmarks in other packages that must run
// beside them in one `go test -bench` invocation (BenchmarkFSMEvent beside
// BenchmarkActorSend, say). Each is the body of a benchmark:
//
//	func BenchmarkActorSend(b *testing.B) { actortest.SendBaseline(b) }

// SendBaseline measures one sender sending small messages to one actor,
// until the actor has handled them all.
func SendBaseline(b *testing.B) {
	s := NewSystem(b)
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

// CallBaseline measures Call from outside an actor to one that replies at
// once, with ctx.
func CallBaseline(ctx context.Context, b *testing.B) {
	s := NewSystem(b)
	r, err := s.Spawn(echo{})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := actor.Call(ctx, r, i&0xff); err != nil {
			b.Fatal(err)
		}
	}
}

// SpawnBaseline measures Spawn of an idle actor with no fields.
func SpawnBaseline(b *testing.B) {
	s := NewSystem(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Spawn(Idle{}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
}

// FanInBaseline measures senders goroutines sending small messages to one
// actor at once, until it has handled them all; ns/op is per message.
func FanInBaseline(b *testing.B, senders int) {
	s := NewSystem(b)
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

// Idle is a Behavior with no fields that ignores every message.
type Idle struct{}

// Receive ignores msg.
func (Idle) Receive(*actor.Context, any) {}

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

type echo struct{}

func (echo) Receive(c *actor.Context, msg any) { c.Reply(msg) }
