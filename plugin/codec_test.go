package plugin_test

import (
	"bytes"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/plugin"
)

// libraryValue is what msgpack itself decodes b into, as an any.
func libraryValue(b []byte) (any, error) {
	var v any
	if len(b) == 0 {
		return nil, nil
	}
	err := msgpack.NewDecoder(bytes.NewReader(b)).Decode(&v)
	return v, err
}

// TestDecodeValueIsTheLibrarys: the reply decoder's fast paths give the
// same Go value, of the same type, as msgpack's own decoding into an any.
func TestDecodeValueIsTheLibrarys(t *testing.T) {
	values := []any{nil, true, false, 0, 1, 5, 127, 128, 255, 256, -1, -32, -33, -128, -129,
		math.MaxInt64, math.MinInt64, uint64(math.MaxUint64), 1.5, float32(2.5), "", "on", "a string of thirty-one bytes...",
		"a string of thirty-two bytes....", []byte{1, 2}, []any{1, "x"}, map[string]any{"N": 3}}
	for _, v := range values {
		b, err := msgpack.Marshal(v)
		require.NoError(t, err)
		want, werr := libraryValue(b)
		got, gerr := plugin.DecodeValue(b)
		require.Equal(t, werr, gerr, "%#v", v)
		require.Equal(t, want, got, "%#v (% x)", v, b)
	}
	// Every one-byte and two-byte value.
	for c := range 256 {
		for _, b := range [][]byte{{byte(c)}, {byte(c), 0x05}, {byte(c), 0xa1}} {
			want, werr := libraryValue(b)
			got, gerr := plugin.DecodeValue(b)
			require.Equal(t, werr == nil, gerr == nil, "% x: %v / %v", b, werr, gerr)
			if werr == nil {
				require.Equal(t, want, got, "% x", b)
			}
		}
	}
}
