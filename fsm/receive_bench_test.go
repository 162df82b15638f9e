package fsm

import (
	"testing"

	"github.com/hotline-go/hotline/actor"
)

// counting is an actor that counts its messages: the baseline's receiver.
type counting struct{ n int }

func (c *counting) Receive(_ *actor.Context, _ any) { c.n++ }

// BenchmarkReceive: the receiver's CPU per event without the mailbox and
// the sender, on one goroutine: a machine's Receive of a cast that its
// typed handler takes (the direct path), next to a counting actor's
// Receive. Their difference is what the fsm runtime adds to each event.
func BenchmarkReceive(b *testing.B) {
	b.Run("actor", func(b *testing.B) {
		var beh actor.Behavior = &counting{}
		c := &actor.Context{}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			beh.Receive(c, add{i & 0xff})
		}
	})
	b.Run("machine", func(b *testing.B) {
		m := Define("adder", "v1", "on", 0)
		On(m, "on", func(a add, n int) Result[int] { return Keep(n + a.N) })
		in, err := m.New(b.Context(), "")
		if err != nil {
			b.Fatal(err)
		}
		mc := &machine{core: core{code: m, in: in}}
		mc.state = in.State()
		var beh actor.Behavior = mc
		c := &actor.Context{}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			beh.Receive(c, add{i & 0xff})
		}
		if want := 0; in.(*instance[int]).data <= want {
			b.Fatalf("data %d: the handler did not run", in.(*instance[int]).data)
		}
	})
}
