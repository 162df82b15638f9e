package handoff_test

import (
	"bytes"
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
	f.Fuzz(func(t *testing.T, in []byte) {
		_, _, _ = handoff.ReadAnswer(bytes.NewReader(in))
		_, _ = handoff.ReadHeader(bytes.NewReader(in), handoff.Version)
	})
}
