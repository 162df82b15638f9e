package wire_test

import (
	"errors"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/internal/wire"
)

// fuzzDecoder checks that a decoder never panics on any input, and that
// what it accepts encodes back to bytes that decode to the same message.
func fuzzDecoder(f *testing.F, newMsg func() wire.Message) {
	for _, s := range samples {
		f.Add(s.msg.Append(nil))
	}
	f.Add([]byte{})
	f.Add([]byte{0xc1})
	f.Add([]byte{0x96, 0x04, 0xcf})
	f.Fuzz(func(t *testing.T, b []byte) {
		m := newMsg()
		if err := m.Decode(b); err != nil {
			require.ErrorIs(t, err, wire.ErrMalformed)
			return
		}
		again := newMsg()
		require.NoError(t, again.Decode(m.Append(nil)))
		require.Equal(t, m, again)
	})
}

func FuzzDecodeHello(f *testing.F) {
	fuzzDecoder(f, func() wire.Message { return new(wire.Hello) })
}

func FuzzDecodeWelcome(f *testing.F) {
	fuzzDecoder(f, func() wire.Message { return new(wire.Welcome) })
}

func FuzzDecodeAuth(f *testing.F) {
	fuzzDecoder(f, func() wire.Message { return new(wire.Auth) })
}

func FuzzDecodeRequest(f *testing.F) {
	fuzzDecoder(f, func() wire.Message { return new(wire.Request) })
}

func FuzzDecodeMachineCall(f *testing.F) {
	fuzzDecoder(f, func() wire.Message { return new(wire.MachineCall) })
}

func FuzzDecodeMachineResult(f *testing.F) {
	fuzzDecoder(f, func() wire.Message { return new(wire.MachineResult) })
}

func FuzzDecodeResponse(f *testing.F) {
	fuzzDecoder(f, func() wire.Message { return new(wire.Response) })
}

// FuzzReader feeds a byte stream to a Reader in chunks of the sizes the
// fuzzer picks, and compares the frames with a plain parse of the stream.
func FuzzReader(f *testing.F) {
	var stream []byte
	for _, s := range samples {
		var err error
		stream, err = wire.AppendFrame(stream, s.msg)
		require.NoError(f, err)
	}
	f.Add(stream, []byte{1, 7, 200})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1, 0xc0}, []byte{3})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, []byte{})
	f.Fuzz(func(t *testing.T, stream, chunks []byte) {
		want, wantErr := parseFrames(stream)
		r := wire.NewReader(&chunkReader{data: stream, chunks: chunks}, 16)
		for i := 0; ; i++ {
			m, err := r.Next()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				i--
				continue // a timeout keeps what was read; go on
			}
			if err != nil {
				require.Equal(t, len(want), i, "frames read before the error")
				if wantErr {
					require.ErrorIs(t, err, wire.ErrFrameTooLarge)
				}
				return
			}
			require.Less(t, i, len(want))
			require.Equal(t, want[i], m)
		}
	})
}

// FuzzDecodeWithStrings: decoding with a Strings gives the same message,
// or the same error, as without, for a Request, a MachineCall and a
// MachineResult, with the Strings shared by every input.
func FuzzDecodeWithStrings(f *testing.F) {
	for _, s := range samples {
		f.Add(s.msg.Append(nil))
	}
	f.Add([]byte{0x96, 0x04, 0xcf})
	var strs wire.Strings
	f.Fuzz(func(t *testing.T, b []byte) {
		var r1, r2 wire.Request
		err1, err2 := r1.Decode(b), r2.DecodeWith(b, &strs)
		require.Equal(t, err1, err2)
		require.Equal(t, r1, r2)
		var c1, c2 wire.MachineCall
		err1, err2 = c1.Decode(b), c2.DecodeWith(b, &strs)
		require.Equal(t, err1, err2)
		require.Equal(t, c1, c2)
		var m1, m2 wire.MachineResult
		err1, err2 = m1.Decode(b), m2.DecodeWith(b, &strs)
		require.Equal(t, err1, err2)
		require.Equal(t, m1, m2)
	})
}
