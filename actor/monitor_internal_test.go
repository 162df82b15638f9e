package actor

import (
	"context"
	"io"
	"log/slog"
	"testing"
)

func quietSystem(t *testing.T) *System {
	s := NewSystem(WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return s
}

// monitorBehavior monitors the Ref it is called with, demonitors the
// MonitorRef, and forwards every Down.
type monitorBehavior struct{ downs chan Down }

func (b monitorBehavior) Receive(c *Context, msg any) {
	switch m := msg.(type) {
	case Ref:
		c.Reply(c.Monitor(m))
	case MonitorRef:
		c.Demonitor(m)
	case Down:
		b.downs <- m
	}
}

func mustSpawn(t *testing.T, s *System, b Behavior) Ref {
	r, err := s.Spawn(b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func monitorsHeld(t *testing.T, r Ref) int {
	r.a.mu.Lock()
	defer r.a.mu.Unlock()
	if r.a.ext == nil {
		return 0
	}
	return len(r.a.ext.monitoring)
}

// A monitor that fired is forgotten by its watcher: an actor that watches
// many short-lived ones does not keep one entry for each.
func TestMonitorForgottenOnceFired(t *testing.T) {
	s := quietSystem(t)
	downs := make(chan Down, 1)
	w := mustSpawn(t, s, monitorBehavior{downs})
	for range 3 {
		target := mustSpawn(t, s, BehaviorFunc(func(*Context, any) {}))
		if _, err := Call(context.Background(), w, target); err != nil {
			t.Fatal(err)
		}
		if err := Stop(context.Background(), target, nil); err != nil {
			t.Fatal(err)
		}
		<-downs
	}
	if n := monitorsHeld(t, w); n != 0 {
		t.Fatalf("the watcher still holds %d monitors of dead actors", n)
	}
}

// The exit of a target that took its list of watchers before the watcher
// demonitored (the race of an exit and a Demonitor) delivers nothing once
// Demonitor has returned: tellWatcher is what that exit does next.
func TestNoDownAfterDemonitor(t *testing.T) {
	s := quietSystem(t)
	downs := make(chan Down, 1)
	w := mustSpawn(t, s, monitorBehavior{downs})
	target := mustSpawn(t, s, BehaviorFunc(func(*Context, any) {}))
	v, err := Call(context.Background(), w, target)
	if err != nil {
		t.Fatal(err)
	}
	m := v.(MonitorRef)
	if _, err := Call(context.Background(), w, m); err != ErrNoReply {
		t.Fatalf("demonitor: %v", err)
	}
	target.a.tellWatcher(w.a, m.id, Normal)
	if _, err := Call(context.Background(), w, "after"); err != ErrNoReply {
		t.Fatal(err)
	}
	select {
	case d := <-downs:
		t.Fatalf("a Down after Demonitor returned: %+v", d)
	default:
	}
	if n := monitorsHeld(t, w); n != 0 {
		t.Fatalf("the watcher still holds %d monitors", n)
	}
}
