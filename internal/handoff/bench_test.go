package handoff_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/internal/handoff"
)

// sessions is a State like the one BenchmarkHandoff hands over: n machines
// of a few bytes of data, each with its connection.
func sessions(n int) handoff.State {
	var s handoff.State
	for i := range n {
		key := fmt.Sprintf("c12345-%d", i)
		s.Machines = append(s.Machines, handoff.Machine{
			Key: key, Machine: "session", Version: "v1", ID: key, State: "open",
			Data: []byte{0x93, 0x01, 0xc2, 0xc0},
		})
		s.Conns = append(s.Conns, handoff.Conn{Key: key, Owner: key})
	}
	return s
}

// BenchmarkEncode encodes 10,000 machines and their connections; the
// baseline is msgpack's reflection-based encoder on the same State (the
// bytes are equal: TestEncodeMatchesMsgpack).
func BenchmarkEncode(b *testing.B) {
	s := sessions(10000)
	b.Run("baseline=msgpack", func(b *testing.B) {
		for b.Loop() {
			_, err := msgpack.Marshal(&s)
			require.NoError(b, err)
		}
	})
	b.Run("handoff", func(b *testing.B) {
		for b.Loop() {
			_, err := handoff.Encode(&s)
			require.NoError(b, err)
		}
	})
}

// BenchmarkDecode decodes what BenchmarkEncode encodes; the baseline is
// msgpack's reflection-based decoder, without the checks of Decode.
func BenchmarkDecode(b *testing.B) {
	s := sessions(10000)
	body, err := handoff.Encode(&s)
	require.NoError(b, err)
	b.SetBytes(int64(len(body)))
	b.Run("baseline=msgpack", func(b *testing.B) {
		for b.Loop() {
			var got handoff.State
			require.NoError(b, msgpack.Unmarshal(body, &got))
		}
	})
	b.Run("handoff", func(b *testing.B) {
		for b.Loop() {
			_, err := handoff.Decode(body)
			require.NoError(b, err)
		}
	})
}
