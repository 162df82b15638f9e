package plugin_test

import (
	"context"
	"strings"
	"testing"

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
