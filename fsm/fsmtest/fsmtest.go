package fsmtest

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	"github.com/vmihailenco/msgpack/v5"
)

// RoundTrip checks each sample of version from with [fsm.RoundTrip]: that
// to's UPGRADE accepts it, that to's downgrade gives it back, and that
// upgrading that again gives the same. It reports each sample that fails
// as an error of t, and goes on with the others.
func RoundTrip(t testing.TB, from, to fsm.Code, samples ...fsm.Snapshot) {
	t.Helper()
	if len(samples) == 0 {
		t.Errorf("fsmtest: RoundTrip of %s %s -> %s: no samples", from.Machine(), from.Version(), to.Version())
	}
	for i, s := range samples {
		if err := fsm.RoundTrip(t.Context(), from, to, s); err != nil {
			t.Errorf("sample %d: %v", i, err)
		}
	}
}

// Sample returns the snapshot of a machine of m's version in state with
// data, for [RoundTrip] or [fsm.FromSnapshot]. It fails t if data does not
// encode.
func Sample[D any](t testing.TB, m *fsm.Machine[D], state string, data D) fsm.Snapshot {
	t.Helper()
	s, err := m.Snapshot(state, data)
	if err != nil {
		t.Fatalf("fsmtest: sample: %v", err)
	}
	return s
}

// A Machine is a state machine started by [Start] for a test, with its
// Ref and the System it runs in. Its methods fail the test on an error
// that a test does not expect (a Cast to a machine that has exited, say);
// Call and ChangeCode return theirs.
type Machine struct {
	Ref    actor.Ref
	System *actor.System
	t      testing.TB
}

// Start starts a machine running code, in a System of its own that is shut
// down when the test ends, and fails t if it does not start. Inside a
// synctest bubble, call it inside the bubble.
func Start(t testing.TB, code fsm.Code, opts ...fsm.StartOption) *Machine {
	t.Helper()
	sys := actor.NewSystem(actor.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(func() {
		if err := sys.Shutdown(context.Background()); err != nil {
			t.Errorf("fsmtest: shutdown: %v", err)
		}
	})
	ref, err := fsm.Start(t.Context(), sys, code, opts...)
	if err != nil {
		t.Fatalf("fsmtest: start %s %s: %v", code.Machine(), code.Version(), err)
	}
	return &Machine{Ref: ref, System: sys, t: t}
}

// Cast sends the events, in order.
func (m *Machine) Cast(evs ...any) {
	m.t.Helper()
	for _, ev := range evs {
		if err := fsm.Cast(m.Ref, ev); err != nil {
			m.t.Fatalf("fsmtest: cast %T: %v", ev, err)
		}
	}
}

// Call sends ev and returns the reply; see [fsm.Call].
func (m *Machine) Call(ev any) (any, error) {
	return fsm.Call(m.t.Context(), m.Ref, ev)
}

// Info returns what [fsm.Inspect] does, once the machine has handled the
// events sent before.
func (m *Machine) Info() fsm.Info {
	m.t.Helper()
	ctx := m.t.Context()
	if err := fsm.Sync(ctx, m.Ref); err != nil {
		m.t.Fatalf("fsmtest: sync: %v", err)
	}
	inf, err := fsm.Inspect(ctx, m.Ref)
	if err != nil {
		m.t.Fatalf("fsmtest: inspect: %v", err)
	}
	return inf
}

// State returns the machine's state, once it has handled the events sent
// before.
func (m *Machine) State() string {
	m.t.Helper()
	return m.Info().State
}

// Data decodes the machine's data into v (a pointer to the data type of
// the version it runs), once it has handled the events sent before.
func (m *Machine) Data(v any) {
	m.t.Helper()
	if err := msgpack.Unmarshal(m.Info().Data, v); err != nil {
		m.t.Fatalf("fsmtest: data: %v", err)
	}
}

// ChangeCode moves the machine to version to, once it has handled the
// events sent before; see [fsm.ChangeCode].
func (m *Machine) ChangeCode(to fsm.Code, opts ...fsm.ChangeOption) error {
	m.t.Helper()
	ctx := m.t.Context()
	if err := fsm.Sync(ctx, m.Ref); err != nil {
		m.t.Fatalf("fsmtest: sync: %v", err)
	}
	return fsm.ChangeCode(ctx, m.Ref, to, opts...)
}
