package upgrade

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// opLock is a machine name's upgrade exclusion: an upgrade, a rollback or
// a confirm takes it without waiting (TryLock) and is refused if it is
// held; a handoff tied to the release handler waits for it (lockHandoff),
// and holds it until the handoff has ended. The zero value is free.
type opLock struct {
	mu      sync.Mutex
	held    bool
	handoff bool          // held by a handoff
	free    chan struct{} // closed at the next Unlock; nil while nobody waits
}

// TryLock takes the exclusion if it is free, and reports whether it did.
func (l *opLock) TryLock() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held {
		return false
	}
	l.held = true
	return true
}

// Unlock lets go of the exclusion, and wakes a handoff that waits for it.
func (l *opLock) Unlock() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.held {
		panic("upgrade: unlock of a free upgrade exclusion")
	}
	l.held, l.handoff = false, false
	if l.free != nil {
		close(l.free)
		l.free = nil
	}
}

// lockHandoff takes the exclusion for a handoff, waiting for an upgrade
// that holds it until ctx is done; waits, if not nil, is called once if it
// has to wait.
func (l *opLock) lockHandoff(ctx context.Context, waits func()) error {
	for first := true; ; first = false {
		l.mu.Lock()
		if !l.held {
			l.held, l.handoff = true, true
			l.mu.Unlock()
			return nil
		}
		if l.free == nil {
			l.free = make(chan struct{})
		}
		free := l.free
		l.mu.Unlock()
		if first && waits != nil {
			waits()
		}
		select {
		case <-free:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// busy returns why a TryLock of the exclusion of machine failed.
func (l *opLock) busy(machine string) error {
	l.mu.Lock()
	handoff := l.handoff
	l.mu.Unlock()
	if handoff {
		return fmt.Errorf("%w: %s", ErrHandingOff, machine)
	}
	return fmt.Errorf("%w: %s", ErrBusy, machine)
}

// handoffHold is the upgrade exclusions a handoff holds.
type handoffHold struct {
	held []*release // guarded by ReleaseHandler.mu
}

// holdUpgrades takes, for a handoff, the upgrade exclusion of every
// machine name of h, in the order of their names: it waits for an upgrade
// (a rollout, a rollback, a confirm) in progress to end, until ctx is done.
// A machine name registered meanwhile is held from its registration. It
// returns the function that lets go of them all (the handoff failed); on
// an error, it has let go of them already.
func (h *ReleaseHandler) holdUpgrades(ctx context.Context) (letGo func(), err error) {
	hold := &handoffHold{}
	h.mu.Lock()
	if h.handoff != nil {
		h.mu.Unlock()
		return nil, fmt.Errorf("%w: another handoff holds the upgrades", ErrHandingOff)
	}
	h.handoff = hold
	names := slices.Sorted(maps.Keys(h.machines))
	rs := make([]*release, len(names))
	for i, n := range names {
		rs[i] = h.machines[n]
	}
	seam := h.handoffWaits
	h.mu.Unlock()
	var once sync.Once
	letGo = func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.handoff = nil
			for _, r := range hold.held {
				r.op.Unlock()
			}
			hold.held = nil
		})
	}
	for _, r := range rs {
		var waits func()
		if seam != nil {
			waits = func() { seam(r.name) }
		}
		if err := r.op.lockHandoff(ctx, waits); err != nil {
			letGo()
			return nil, fmt.Errorf("upgrade: handoff: an upgrade of %s did not end in time: %w", r.name, err)
		}
		h.mu.Lock()
		hold.held = append(hold.held, r)
		h.mu.Unlock()
	}
	return letGo, nil
}

// holdNewLocked holds the upgrade exclusion of r, a machine name created
// during a handoff that holds the upgrades. Called with h.mu held.
func (h *ReleaseHandler) holdNewLocked(r *release) {
	if h.handoff == nil {
		return
	}
	r.op.held, r.op.handoff = true, true // new: nobody else has seen it
	h.handoff.held = append(h.handoff.held, r)
}
