package fsm_test

import (
	"context"
	"testing"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/actor/actortest"
	"github.com/hotline-go/hotline/fsm"
)

// The receiver's side alone: events are queued while the actor is
// suspended, and only its handling of them is timed, in batches of
// drainBatch, so that neither the sender nor the scheduling of two
// goroutines is in the figure. BenchmarkActorDrain is the baseline: an
// actor that counts its messages.

const drainBatch = 4096

// counting counts its messages; Sync-like calls (a *syncCount) get the
// count.
type counting struct{ n int }

type syncCount struct{}

func (c *counting) Receive(ctx *actor.Context, msg any) {
	if _, ok := msg.(syncCount); ok {
		ctx.Reply(c.n)
		return
	}
	c.n++
}

func benchDrain(b *testing.B, r actor.Ref, send func(i int) error, sync func() error) {
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += drainBatch {
		b.StopTimer()
		if err := actor.Suspend(ctx, r); err != nil {
			b.Fatal(err)
		}
		for i := range min(drainBatch, b.N-done) {
			if err := send(i); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		if err := actor.Resume(ctx, r); err != nil {
			b.Fatal(err)
		}
		if err := sync(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkActorDrain: the baseline receiver, per message.
func BenchmarkActorDrain(b *testing.B) {
	s := actortest.NewSystem(b)
	r, err := s.Spawn(&counting{})
	if err != nil {
		b.Fatal(err)
	}
	benchDrain(b, r, func(i int) error { return actor.Send(r, i&0xff) }, func() error {
		_, err := actor.Call(context.Background(), r, syncCount{})
		return err
	})
}

// BenchmarkFSMDrain: a machine's handling of cast events, per event.
func BenchmarkFSMDrain(b *testing.B) {
	s := actortest.NewSystem(b)
	r := startBench(b, s, adder())
	benchDrain(b, r, func(i int) error { return fsm.Cast(r, Add{i & 0xff}) }, func() error {
		return fsm.Sync(context.Background(), r)
	})
}
