package actor

import "testing"

// Options apply in order (a later one overrides an earlier one's field),
// the zero option changes nothing, and applying them allocates nothing:
// a supervisor passes LinkTo at every restart.
func TestSpawnOptions(t *testing.T) {
	p, q := &actor{}, &actor{}
	opts := []SpawnOption{
		WithName("a"), LinkTo(Ref{p}), {}, WithMailbox(8, DropOldest),
		WithName("b"), LinkTo(Ref{q}),
	}
	got := newSpawnConfig(opts)
	want := spawnConfig{name: "b", bound: 8, policy: DropOldest, link: q}
	if got != want {
		t.Fatalf("newSpawnConfig = %+v, want %+v", got, want)
	}
	if got := newSpawnConfig(nil); got != (spawnConfig{}) {
		t.Fatalf("no options: %+v", got)
	}
	if n := testing.AllocsPerRun(100, func() { _ = newSpawnConfig(opts) }); n != 0 {
		t.Fatalf("applying options allocated %v times", n)
	}
}
