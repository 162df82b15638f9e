package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/internal/wire"
)

// chunkReader returns data in reads of the sizes in chunks (cycled; a zero
// size gives a timeout error, and the read after it at least one byte), then
// io.EOF.
type chunkReader struct {
	data     []byte
	chunks   []byte
	i        int
	timedOut bool
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := len(p)
	if len(c.chunks) > 0 {
		n = int(c.chunks[c.i%len(c.chunks)])
		c.i++
		if n == 0 && !c.timedOut {
			c.timedOut = true
			return 0, os.ErrDeadlineExceeded
		}
	}
	c.timedOut = false
	n = max(n, 1)
	n = copy(p[:min(n, len(p))], c.data)
	c.data = c.data[n:]
	return n, nil
}

// parseFrames is the obvious parse of a whole stream: the frames, and
// whether it ends on a frame that is too large.
func parseFrames(b []byte) (frames [][]byte, tooLarge bool) {
	for len(b) >= 4 {
		n := uint64(binary.BigEndian.Uint32(b))
		if n > wire.MaxFrameSize {
			return frames, true
		}
		if uint64(len(b)-4) < n {
			break
		}
		frames = append(frames, b[4:4+n])
		b = b[4+n:]
	}
	return frames, false
}

func TestReader(t *testing.T) {
	var stream []byte
	var want [][]byte
	for _, s := range samples {
		var err error
		stream, err = wire.AppendFrame(stream, s.msg)
		require.NoError(t, err)
		want = append(want, s.msg.Append(nil))
	}
	tests := []struct {
		name   string
		chunks []byte
	}{
		{"whole", nil},
		{"byte by byte", []byte{1}},
		{"odd chunks", []byte{3, 17, 250, 5}},
		{"timeouts between chunks", []byte{2, 0, 9, 0, 0, 40}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := wire.NewReader(&chunkReader{data: stream, chunks: tt.chunks}, 8)
			var got [][]byte
			for {
				had := r.HasFrame()
				m, err := r.Next()
				if had {
					require.NoError(t, err, "a buffered frame is returned without a read")
				}
				if errors.Is(err, os.ErrDeadlineExceeded) {
					continue // a timeout keeps what was read; go on
				}
				if err == io.EOF {
					break
				}
				require.NoError(t, err)
				got = append(got, bytes.Clone(m))
			}
			require.Equal(t, want, got)
			require.False(t, r.Buffered())
		})
	}
}

func TestReaderTooLarge(t *testing.T) {
	r := wire.NewReader(bytes.NewReader([]byte{0x01, 0x00, 0x00, 0x01}), 0)
	_, err := r.Next()
	require.ErrorIs(t, err, wire.ErrFrameTooLarge)
}

func TestReaderErrorWithData(t *testing.T) {
	frame, err := wire.AppendFrame(nil, &wire.Auth{Token: []byte{1}})
	require.NoError(t, err)
	r := wire.NewReader(io.MultiReader(bytes.NewReader(frame), errReader{}), 64)
	m, err := r.Next()
	require.NoError(t, err)
	require.Equal(t, frame[4:], m)
	_, err = r.Next()
	require.ErrorIs(t, err, errBroken)
}

var errBroken = errors.New("broken")

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errBroken }

func TestEndFrameTooLarge(t *testing.T) {
	b, start := wire.BeginFrame([]byte("prefix"))
	b = append(b, make([]byte, wire.MaxFrameSize+1)...)
	b, err := wire.EndFrame(b, start)
	require.ErrorIs(t, err, wire.ErrFrameTooLarge)
	require.Equal(t, []byte("prefix"), b)
}

// A stream that ends inside a frame (its length or its message) ends with
// io.ErrUnexpectedEOF, saying where; between frames, with io.EOF.
func TestReaderCutFrame(t *testing.T) {
	frame, err := wire.AppendFrame(nil, &wire.Auth{Token: []byte{1}})
	require.NoError(t, err)
	for _, tt := range []struct {
		name   string
		stream []byte
		text   string
	}{
		{"in the length", append(frame[:len(frame):len(frame)], 0, 0), "the stream ended 2 bytes into a frame"},
		{"in the message", append(frame[:len(frame):len(frame)], frame[:6]...), "the stream ended 6 bytes into a frame"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The end comes after the last bytes, or with them.
			for _, src := range []io.Reader{&chunkReader{data: tt.stream, chunks: []byte{3}}, iotest.DataErrReader(bytes.NewReader(tt.stream))} {
				r := wire.NewReader(src, 8)
				m, err := r.Next()
				require.NoError(t, err)
				require.Equal(t, frame[4:], m)
				_, err = r.Next()
				require.ErrorIs(t, err, io.ErrUnexpectedEOF)
				require.EqualError(t, err, "unexpected EOF: "+tt.text)
			}
		})
	}
	r := wire.NewReader(bytes.NewReader(frame), 8)
	_, err = r.Next()
	require.NoError(t, err)
	_, err = r.Next()
	require.Equal(t, io.EOF, err)
}
