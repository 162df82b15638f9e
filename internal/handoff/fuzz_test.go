package handoff_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/internal/handoff"
)

// FuzzDecode: any input is decoded or refused with ErrFormat, never a
// panic, and what decodes encodes back to a State that decodes the same.
func FuzzDecode(f *testing.F) {
	s := sample()
	b, err := handoff.Encode(&s)
	require.NoError(f, err)
	f.Add(b)
	v2 := sampleV2()
	b, err = handoff.Encode(&v2)
	require.NoError(f, err)
	f.Add(b)
	v3 := sampleV3()
	b, err = handoff.Encode(&v3)
	require.NoError(f, err)
	f.Add(b)
	f.Add([]byte{0x95, 0x90, 0x90, 0x90, 0x00, 0x91, 0x96, 0xa1, 'x', 0xa2, 'o', 'n', 0xa0, 0xa0, 0x00, 0xc3})
	f.Add([]byte{0x92, 0x90, 0x90})
	f.Add([]byte{0x93, 0x90, 0x90, 0x91, 0x94, 0xa0, 0xa0, 0xa0, 0x91, 0xa0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := handoff.Decode(in)
		if err != nil {
			require.ErrorIs(t, err, handoff.ErrFormat)
			return
		}
		out, err := handoff.Encode(&s)
		require.NoError(t, err)
		s2, err := handoff.Decode(out)
		require.NoError(t, err)
		out2, err := handoff.Encode(&s2)
		require.NoError(t, err)
		require.True(t, bytes.Equal(out, out2))
	})
}

// FuzzAnswer: the answer reader refuses or reads, never panics.
func FuzzAnswer(f *testing.F) {
	f.Add([]byte{'K'})
	f.Add([]byte{'E', 0, 0, 0, 1, 'x'})
	f.Add([]byte(handoff.Magic + "\x00\x01"))
	f.Fuzz(func(t *testing.T, in []byte) {
		refused := func(err error) bool {
			return errors.Is(err, handoff.ErrFormat) || errors.Is(err, handoff.ErrVersion) ||
				errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		}
		a, reason, err := handoff.ReadAnswer(bytes.NewReader(in))
		switch {
		case err != nil:
			require.True(t, refused(err), "%v", err)
		case a == handoff.Accept || a == handoff.Ack:
			require.Empty(t, reason)
		default:
			require.Contains(t, []byte{handoff.Refuse, handoff.Fail}, a)
			require.LessOrEqual(t, len(reason), handoff.MaxReason)
		}
		v, err := handoff.ReadHeader(bytes.NewReader(in), handoff.Version)
		if err != nil {
			require.True(t, refused(err), "%v", err)
			return
		}
		require.True(t, v >= handoff.MinVersion && v <= handoff.Version, "version %d read", v)
	})
}

// FuzzReadState: any bytes on the handoff socket, where a State frame is
// expected, are read as one or refused (ErrFormat, or the socket's end),
// never a panic or an allocation beyond the frame's bounds.
func FuzzReadState(f *testing.F) {
	f.Add([]byte{0, 0, 0, 3, 0, 0, 0, 0, 'a', 'b', 'c'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1, 'F'})
	f.Add([]byte{0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
		require.NoError(t, err)
		w := os.NewFile(uintptr(fds[0]), "w")
		r := os.NewFile(uintptr(fds[1]), "r")
		fc, err := net.FileConn(r)
		require.NoError(t, err)
		require.NoError(t, r.Close())
		defer func() { require.NoError(t, fc.Close()) }()
		written := make(chan error, 1)
		go func() {
			_, err := w.Write(in)
			written <- errors.Join(err, w.Close())
		}()
		body, files, err := handoff.ReadState(fc.(*net.UnixConn))
		require.NoError(t, <-written)
		if err != nil {
			require.True(t, errors.Is(err, handoff.ErrFormat) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF), "%v", err)
			require.Nil(t, files)
			return
		}
		require.Empty(t, files) // none were sent
		require.GreaterOrEqual(t, len(in), 8+len(body))
		require.Equal(t, uint32(len(body)), binary.BigEndian.Uint32(in))
	})
}
