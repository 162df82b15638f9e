package plugin_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/flags"
	"github.com/hotline-go/hotline/fsm"
	machine "github.com/hotline-go/hotline/internal/plugintest/machine"
)

// BenchmarkInstanceHandle is BenchmarkPluginEvent without the actor: the
// host-side instance's Handle, a round trip to the plugin.
func BenchmarkInstanceHandle(b *testing.B) {
	p := loadB(b)
	c, err := p.Code("v1")
	require.NoError(b, err)
	in, err := c.New(context.Background(), "machine-0001")
	require.NoError(b, err)
	_, _, err = in.Handle(fsm.Event{Kind: fsm.KindCall, Payload: machine.Pad{Blob: make([]byte, 180)}})
	require.NoError(b, err)
	ev := fsm.Event{Kind: fsm.KindCall, Payload: machine.Pad{Note: strings.Repeat("n", 60)}}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := in.Handle(ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPluginSide is the plugin's work for one event, in-process: the
// same machine's Load, DecodeEvent, Handle, Encode on msgpack.
func BenchmarkPluginSide(b *testing.B) {
	m := machine.V1()
	ctx := context.Background()
	in, err := m.New(ctx, "x")
	require.NoError(b, err)
	_, _, err = in.Handle(fsm.Event{Kind: fsm.KindCall, Payload: machine.Pad{Blob: make([]byte, 180)}})
	require.NoError(b, err)
	data, err := in.Encode()
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		in, err := m.Load(ctx, "idle", data)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := in.Handle(fsm.Event{Kind: fsm.KindCall, Payload: machine.Pad{Note: "n"}}); err != nil {
			b.Fatal(err)
		}
		if _, err := in.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFlagsOverWire: one event to the plugin whose handler reads a
// flag, with no flag set (the baseline) and with four flags on, which the
// host evaluates and sends with the event.
// Run: go test -run '^$' -bench FlagsOverWire -count 3 ./plugin/
func BenchmarkFlagsOverWire(b *testing.B) {
	p := loadB(b)
	c, err := p.Code("v1")
	require.NoError(b, err)
	for _, n := range []int{0, 4} {
		name := "baseline=none"
		if n > 0 {
			name = "on=4"
		}
		b.Run(name, func(b *testing.B) {
			fl := flags.New(flags.WithLogger(slog.New(slog.DiscardHandler)))
			for _, f := range []string{"big", "fast-dial", "new-tone", "quiet-hours"}[:n] {
				_, err := fl.Set(f, flags.On, "bench")
				require.NoError(b, err)
			}
			in, err := c.New(context.Background(), "machine-0001")
			require.NoError(b, err)
			in.(fsm.FlagUser).UseFlags(fsm.NewFlags(fl, "machine-0001"))
			ev := fsm.Event{Kind: fsm.KindCall, Payload: machine.Bump{}}
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := in.Handle(ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
