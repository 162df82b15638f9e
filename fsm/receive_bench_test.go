package fsm

import (
	"testing"
	"unsafe"

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
			beh.Receive(c, add{i&0xff | 1})
		}
	})
	b.Run("machine", func(b *testing.B) {
		m := Define("adder", "v1", "on", 0)
		On(m, "on", func(a add, n int) Result[int] { return Keep(n + a.N) })
		in, err := m.New(b.Context(), "")
		if err != nil {
			b.Fatal(err)
		}
		mc := &machine{core: core{code: m}}
		mc.setIn(in)
		mc.state = in.State()
		var beh actor.Behavior = mc
		c := &actor.Context{}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			beh.Receive(c, add{i&0xff | 1})
		}
		if want := 0; in.(*instance[int]).data <= want {
			b.Fatalf("data %d: the handler did not run", in.(*instance[int]).data)
		}
	})
}

// TestInstanceLayout checks the padding of instance (see its doc): the
// fields every event touches are 64 bytes from either end.
func TestInstanceLayout(t *testing.T) {
	check := func(name string, hotOff, dataEnd, size uintptr) {
		t.Helper()
		if hotOff < 64 || size-dataEnd < 64 {
			t.Errorf("instance[%s]: hot at %d, data ends at %d of %d bytes: want 64 bytes either side", name, hotOff, dataEnd, size)
		}
	}
	var a instance[int]
	check("int", unsafe.Offsetof(a.hot), unsafe.Offsetof(a.data)+unsafe.Sizeof(a.data), unsafe.Sizeof(a))
	var b instance[[100]byte]
	check("[100]byte", unsafe.Offsetof(b.hot), unsafe.Offsetof(b.data)+unsafe.Sizeof(b.data), unsafe.Sizeof(b))
	var c instance[struct{}]
	check("struct{}", unsafe.Offsetof(c.hot), unsafe.Offsetof(c.data)+unsafe.Sizeof(c.data), unsafe.Sizeof(c))
}
