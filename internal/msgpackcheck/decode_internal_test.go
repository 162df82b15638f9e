package msgpackcheck

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// Decoding into a value without strings or slices allocates nothing. (With
// a decoder held here: the race detector's sync.Pool drops some of what it
// is given.)
func TestDecodeAllocations(t *testing.T) {
	type flat struct{ A, B, C int }
	raw, err := msgpack.Marshal(flat{1, 2, 3})
	require.NoError(t, err)
	d := newDecoder()
	var f flat
	require.Zero(t, testing.AllocsPerRun(100, func() {
		if err := d.decode(raw, &f); err != nil {
			t.Fatal(err)
		}
	}))
	require.Equal(t, flat{1, 2, 3}, f)
}
