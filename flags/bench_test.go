package flags_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/flags"
	"github.com/hotline-go/hotline/fsm"
)

var sink bool

// BenchmarkRead: a flag read, against the baseline of a hand-rolled
// toggle (an atomic.Bool). Run: go test -run '^$' -bench Read -count 3 ./flags/
func BenchmarkRead(b *testing.B) {
	s := flags.New(quiet())
	for _, f := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		_, err := s.Set(f, flags.On, "bench")
		require.NoError(b, err)
	}
	_, err := s.Set("pct", flags.Percent(50), "bench")
	require.NoError(b, err)
	var toggle atomic.Bool
	toggle.Store(true)
	b.Run("baseline=atomic.Bool", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink = toggle.Load()
		}
	})
	for _, name := range []string{"on", "pct", "missing"} {
		f := name
		if f == "on" {
			f = "e"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sink = s.Enabled(f, "555-0100")
			}
		})
	}
}

type Tick struct{}

// BenchmarkHandler: one event through an in-process instance whose
// handler reads a percentage flag, against the baseline of the same
// handler declared with fsm.On that reads none.
// Run: go test -run '^$' -bench Handler -count 3 ./flags/
func BenchmarkHandler(b *testing.B) {
	s := flags.New(quiet())
	_, err := s.Set("pct", flags.Percent(50), "bench")
	require.NoError(b, err)
	plain := fsm.Define("bench", "v1", "idle", 0)
	fsm.On(plain, "idle", func(_ Tick, n int) fsm.Result[int] { return fsm.Keep(n + 1) })
	flagged := fsm.Define("bench", "v1", "idle", 0)
	fsm.OnFlags(flagged, "idle", func(_ Tick, n int, f fsm.Flags) fsm.Result[int] {
		if f.On("pct") {
			return fsm.Keep(n + 2)
		}
		return fsm.Keep(n + 1)
	})
	for _, tc := range []struct {
		name string
		m    *fsm.Machine[int]
	}{{"baseline=plain", plain}, {"flagged", flagged}} {
		b.Run(tc.name, func(b *testing.B) {
			in, err := tc.m.New(context.Background(), "555-0100")
			require.NoError(b, err)
			if u, ok := in.(fsm.FlagUser); ok {
				u.UseFlags(fsm.NewFlags(s, "555-0100"))
			}
			ev := fsm.Event{Payload: Tick{}}
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := in.Handle(ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
