package plugin_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/fsm"
	machine "github.com/hotline-go/hotline/internal/plugintest/machine"
	"github.com/hotline-go/hotline/internal/wire"
	"github.com/hotline-go/hotline/plugin"
)

// BenchmarkEventSides is the CPU work of one event of BenchmarkPluginEvent
// outside the transport: the host's encoding of the call, the plugin's
// handling of its body, the host's decoding of the result.
func BenchmarkEventSides(b *testing.B) {
	m := machine.V1()
	in, err := m.New(context.Background(), "x")
	require.NoError(b, err)
	_, _, err = in.Handle(fsm.Event{Kind: fsm.KindCall, Payload: machine.Pad{Blob: make([]byte, 180)}})
	require.NoError(b, err)
	data, err := in.Encode()
	require.NoError(b, err)
	ev := fsm.Event{Kind: fsm.KindCall, Payload: machine.Pad{Note: strings.Repeat("n", 60)}}
	_, err = plugin.HostEncode("idle", data, ev)
	require.NoError(b, err)
	p, err := marshalCall("idle", data, ev)
	require.NoError(b, err)
	body := p
	handle := plugin.NewTestServer(m)
	out, err := handle(wire.MethodHandle, body)
	require.NoError(b, err)
	b.Logf("call %d bytes, result %d bytes", len(body), len(out))
	b.Run("host-encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := plugin.HostEncode("idle", data, ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("plugin", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := handle(wire.MethodHandle, body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("host-decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := plugin.HostDecode(out); err != nil {
				b.Fatal(err)
			}
		}
	})
	sides := []func() error{
		func() error { _, err := plugin.HostEncode("idle", data, ev); return err },
		func() error { _, err := handle(wire.MethodHandle, body); return err },
		func() error { _, _, err := plugin.HostDecode(out); return err },
	}
	b.Run("warm", func(b *testing.B) { sidesWork(b, sides, 0) })
	b.Run("after-wait", func(b *testing.B) { sidesWork(b, sides, afterWait) })
}

// afterWait is how long each side waits for another goroutine in
// BenchmarkEventSides/after-wait before its work: about the time each
// process of BenchmarkPluginEvent waits for the other.
const afterWait = 30 * time.Microsecond

// sidesWork runs the three sides of an event one after another, b.N
// times, and reports work-ns/op: the time of the work alone (ns/op
// includes the waits). With d > 0, each side first waits, blocked on a
// channel, for another goroutine that spins for d, as each process runs
// its side after waiting for the other's answer: the waiting goroutine's
// thread goes idle. The work is the same either way; on a host whose
// cores lose their warm state while a thread is idle, after-wait is what
// the event's work costs across two processes, warm what it costs in a
// tight loop.
func sidesWork(b *testing.B, sides []func() error, d time.Duration) {
	var wait func()
	if d > 0 {
		ask, told := make(chan struct{}), make(chan struct{})
		defer close(ask)
		go func() {
			for range ask {
				for t0 := time.Now(); time.Since(t0) < d; {
				}
				told <- struct{}{}
			}
		}()
		wait = func() {
			ask <- struct{}{}
			<-told
		}
	}
	var work time.Duration
	for b.Loop() {
		for _, side := range sides {
			if wait != nil {
				wait()
			}
			t0 := time.Now()
			err := side()
			work += time.Since(t0)
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(work.Nanoseconds())/float64(b.N), "work-ns/op")
}

// marshalCall is the body of a handle call of ev, for the plugin side.
func marshalCall(state string, data []byte, ev fsm.Event) ([]byte, error) {
	p, err := msgpack.Marshal(ev.Payload)
	if err != nil {
		return nil, err
	}
	call := wire.MachineCall{Version: "v1", State: state, Data: data, Kind: uint8(ev.Kind), Event: ev.Name(), Payload: p}
	return call.Append(nil), nil
}
