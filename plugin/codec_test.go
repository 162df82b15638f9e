package plugin_test

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/internal/msgpackcheck"
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
	// Every one-byte and two-byte value. Bytes that are not exactly one
	// value (which the library decodes up to the first value's end) are
	// an error.
	for c := range 256 {
		for _, b := range [][]byte{{byte(c)}, {byte(c), 0x05}, {byte(c), 0xa1}} {
			want, werr := libraryValue(b)
			if msgpackcheck.Check(b) != nil {
				werr = errors.New("not one value")
			}
			got, gerr := plugin.DecodeValue(b)
			require.Equal(t, werr == nil, gerr == nil, "% x: %v / %v", b, werr, gerr)
			if werr == nil {
				require.Equal(t, want, got, "% x", b)
			}
		}
	}
}

// A reply from a plugin process is checked before it is decoded: a
// declared length longer than the bytes is an error, not an allocation of
// that length in the host. A map whose keys are not strings decodes as a
// map[any]any (msgpack alone fails on it), one whose keys are strings as
// msgpack decodes it.
func TestDecodeValueChecksAndMaps(t *testing.T) {
	for _, b := range [][]byte{
		{0xdd, 0xff, 0xff, 0xff, 0xff},       // an array of 4,294,967,295 items, and none
		{0xdf, 0x7f, 0xff, 0xff, 0xff, 0x01}, // a map of 2,147,483,647 pairs, and half of one
		{0xc6, 0xff, 0xff, 0xff, 0xf0},       // a bin of 4 GiB, empty
		{0x81, 0x91, 0x01, 0x02},             // {[1]: 2}: a key that cannot be a Go map key
	} {
		_, err := plugin.DecodeValue(b)
		require.Error(t, err, "% x", b)
	}

	b, err := msgpack.Marshal(map[int]string{1: "one", 2: "two"})
	require.NoError(t, err)
	v, err := plugin.DecodeValue(b)
	require.NoError(t, err)
	require.Equal(t, map[any]any{int8(1): "one", int8(2): "two"}, v)

	b, err = msgpack.Marshal(map[string]any{"a": map[int]int{7: 8}, "b": []any{map[string]int{"c": 1}}})
	require.NoError(t, err)
	v, err = plugin.DecodeValue(b)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"a": map[any]any{int8(7): int8(8)}, "b": []any{map[string]any{"c": int8(1)}}}, v)
}

// A reply holding a map whose keys msgpack writes as bins (a
// map[[16]byte]T: UUIDs) decodes as msgpack alone decodes it, a
// map[string]any (it failed with "hash of unhashable type []uint8").
func TestDecodeValueBinKeys(t *testing.T) {
	b, err := msgpack.Marshal(map[[4]byte]string{{'a', 'b', 'c', 'd'}: "x"})
	require.NoError(t, err)
	want, err := libraryValue(b)
	require.NoError(t, err)
	v, err := plugin.DecodeValue(b)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"abcd": "x"}, v)
	require.Equal(t, want, v)
}
