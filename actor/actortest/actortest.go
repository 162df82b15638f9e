// Package actortest provides what tests of actor code need: a System that
// shuts itself down when the test ends, and a Probe actor that records the
// messages it receives for the test to check.
//
// Time-dependent tests should run inside a [testing/synctest] bubble: make
// the System inside the bubble, and the Probe's waits then use fake time.
package actortest

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/hotline-go/hotline/actor"
)

// NewSystem returns a System whose logger discards (unless opts set
// another) and which is shut down, with a check that the shutdown
// succeeded, when the test ends.
func NewSystem(t testing.TB, opts ...actor.SystemOption) *actor.System {
	t.Helper()
	quiet := actor.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	s := actor.NewSystem(append([]actor.SystemOption{quiet}, opts...)...)
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Errorf("actortest: shutdown: %v", err)
		}
	})
	return s
}

// Timeout is how long a Probe waits for a message before the test fails.
const Timeout = 10 * time.Second

// A Probe is an actor that records every message it receives. Its methods
// are safe to call from the test goroutine.
type Probe struct {
	t   testing.TB
	ref actor.Ref
	ch  chan any
}

// NewProbe spawns a Probe in s. opts are passed to Spawn.
func NewProbe(t testing.TB, s *actor.System, opts ...actor.SpawnOption) *Probe {
	t.Helper()
	p := &Probe{t: t, ch: make(chan any, 1024)}
	r, err := s.Spawn(probe{p.ch}, opts...)
	if err != nil {
		t.Fatalf("actortest: spawn probe: %v", err)
	}
	p.ref = r
	return p
}

type probe struct{ ch chan any }

func (p probe) Receive(c *actor.Context, msg any) {
	if tr, ok := msg.(trapExits); ok {
		c.TrapExits(bool(tr))
		c.Reply(nil)
		return
	}
	p.ch <- msg
}

type trapExits bool

// Ref returns the Probe's Ref.
func (p *Probe) Ref() actor.Ref { return p.ref }

// TrapExits makes the Probe trap exits, so that an exit signal from a link
// arrives as an actor.Exit message.
func (p *Probe) TrapExits() {
	p.t.Helper()
	if _, err := actor.Call(context.Background(), p.ref, trapExits(true)); err != nil {
		p.t.Fatalf("actortest: trap exits: %v", err)
	}
}

// Next returns the next message, failing the test if none comes within
// Timeout.
func (p *Probe) Next() any {
	p.t.Helper()
	select {
	case m := <-p.ch:
		return m
	case <-time.After(Timeout):
		p.t.Fatalf("actortest: no message within %v", Timeout)
		return nil
	}
}

// Expect fails the test unless the next message equals want.
func (p *Probe) Expect(want any) {
	p.t.Helper()
	if got := p.Next(); !reflect.DeepEqual(got, want) {
		p.t.Fatalf("actortest: got message %#v, want %#v", got, want)
	}
}

// Len returns the number of messages received and not yet read.
func (p *Probe) Len() int { return len(p.ch) }

// Wait waits for r to exit and returns its reason, failing the test if it
// does not exit within Timeout.
func Wait(t testing.TB, r actor.Ref) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	reason, err := actor.Wait(ctx, r)
	if err != nil {
		t.Fatalf("actortest: %v", err)
	}
	return reason
}
