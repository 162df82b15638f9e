package fsm

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/internal/msgpackcheck"
)

func TestCheck(t *testing.T) {
	deep := func(n int) []byte { // n nested one-element arrays around nil
		return append([]byte(strings.Repeat("\x91", n)), 0xc0)
	}
	valid := []any{
		nil, true, false, 0, 1, -1, 127, 128, -33, 255, 1 << 16, -1 << 20, math.MaxInt64, math.MinInt64, uint64(math.MaxUint64),
		float32(1.5), 2.5, "", "short", strings.Repeat("x", 40), strings.Repeat("y", 300), strings.Repeat("z", 70000),
		[]byte{}, []byte("bin"), make([]byte, 300), make([]byte, 70000),
		[]int{}, []int{1, 2, 3}, make([]int, 20), make([]int, 70000),
		map[string]int{}, map[string]int{"a": 1}, map[string]any{"k": []any{1, "two", map[string]bool{"x": true}}},
		trail{Seen: []string{"a", "b"}}, msgpack.RawMessage{0xd4, 0x01, 0x02},
	}
	for _, v := range valid {
		b, err := msgpack.Marshal(v)
		require.NoError(t, err)
		require.NoError(t, msgpackcheck.Check(b), "%T %v", v, b)
	}
	require.NoError(t, msgpackcheck.Check(deep(msgpackcheck.MaxDepth)))

	invalid := []struct {
		name string
		b    []byte
		msg  string
	}{
		{"empty", nil, "unexpected end at byte 0"},
		{"reserved", []byte{0xc1}, "reserved code 0xc1 at byte 0"},
		{"trailing", []byte{0x01, 0x02}, "trailing bytes"},
		{"huge array", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}, "length beyond the input at byte 5"},
		{"array short of elements", []byte{0x93, 0x01, 0x02}, "length beyond the input at byte 1"},
		{"nested array short of elements", []byte{0x92, 0x92, 0x01, 0x02}, "unexpected end at byte 4"},
		{"map short of a value", []byte{0x81, 0xa1, 'k'}, "unexpected end at byte 3"},
		{"huge map", []byte{0xdf, 0x7f, 0xff, 0xff, 0xff, 0x00}, "length beyond the input at byte 5"},
		{"string beyond the input", []byte{0xd9, 0x05, 'a'}, "length beyond the input at byte 2"},
		{"bin length cut", []byte{0xc5, 0x01}, "unexpected end at byte 1"},
		{"ext beyond the input", []byte{0xc7, 0x02, 0x01, 0x00}, "length beyond the input at byte 2"},
		{"int cut", []byte{0xcf, 0x00}, "length beyond the input at byte 1"},
		{"too deep", deep(msgpackcheck.MaxDepth + 1), "nesting too deep"},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			require.ErrorContains(t, msgpackcheck.Check(tt.b), tt.msg)
			var v any
			require.Error(t, decode(tt.b, &v))
		})
	}
}

// FuzzCheck: what check lets through decodes without a panic (decode
// turns one into an error; the fuzzer reports a crash or a huge
// allocation), and what msgpack encodes, check lets through.
func FuzzCheck(f *testing.F) {
	for _, v := range []any{nil, 1, "s", []any{1, []any{2}}, map[string]any{"a": 1.5}, []byte{0xdd, 0xff}} {
		b, err := msgpack.Marshal(v)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		if msgpackcheck.Check(b) != nil {
			return
		}
		var v any
		if err := decode(b, &v); err != nil {
			return // an unknown extension type, say
		}
		out, err := msgpack.Marshal(v)
		require.NoError(t, err)
		require.NoError(t, msgpackcheck.Check(out), "re-encoded %x", out)
		var tr trail
		if err := decode(b, &tr); err == nil {
			out, err := msgpack.Marshal(tr)
			require.NoError(t, err)
			require.NoError(t, msgpackcheck.Check(out))
		}
	})
}

// Data whose `any` fields hold maps with keys that are not strings loads:
// such a map decodes as a map[any]any (msgpack alone fails on it), one
// with string keys as the map[string]any msgpack makes.
func TestDecodeAnyMaps(t *testing.T) {
	type data struct {
		Extra any
		Meta  map[string]any
	}
	in := data{
		Extra: map[int]string{1: "one", 2: "two"},
		Meta:  map[string]any{"byID": map[uint8]bool{7: true}, "names": map[string]int{"a": 1}},
	}
	b, err := encode(in)
	require.NoError(t, err)
	var out data
	require.NoError(t, decode(b, &out))
	require.Equal(t, data{
		Extra: map[any]any{int8(1): "one", int8(2): "two"},
		Meta:  map[string]any{"byID": map[any]any{uint8(7): true}, "names": map[string]any{"a": int8(1)}},
	}, out)
}

// RoundTrip compares data as values (msgpackcheck.Value): data holding a
// NaN float, or a map whose keys are arrays or structs, round-trips. It
// failed with ErrRoundTrip (NaN is equal to nothing) or with "hash of
// unhashable type" (the keys) on an upgrade that changed nothing.
func TestRoundTripNaNAndCompositeKeys(t *testing.T) {
	type cell struct{ Row, Col int }
	type grid struct {
		Mean  float64
		ByPos map[[2]int]string
		Cells map[cell]float32
	}
	v1 := Define("grid", "v1", "on", grid{})
	v2 := Define("grid", "v2", "on", grid{})
	v2.OnUpgrade(func(from, state string, raw msgpack.RawMessage) (string, grid, error) {
		var d grid
		err := decode(raw, &d)
		return state, d, err
	})
	v2.OnDowngrade(func(to, state string, d grid) (string, any, error) { return state, d, nil })
	d := grid{Mean: math.NaN(), ByPos: map[[2]int]string{}, Cells: map[cell]float32{}}
	for i := range 10 {
		d.ByPos[[2]int{i, -i}] = fmt.Sprint(i)
		d.Cells[cell{i, i + 1}] = float32(i) / 2
	}
	d.Cells[cell{-1, -1}] = float32(math.NaN())
	snap, err := v1.Snapshot("on", d)
	require.NoError(t, err)
	for range 5 { // each encoding writes the keys in another order
		require.NoError(t, RoundTrip(context.Background(), v1, v2, snap))
	}

	bad := Define("grid", "v2", "on", grid{})
	bad.OnUpgrade(func(from, state string, raw msgpack.RawMessage) (string, grid, error) {
		var d grid
		err := decode(raw, &d)
		d.Cells[cell{3, 4}] = 0.25
		return state, d, err
	})
	bad.OnDowngrade(func(to, state string, d grid) (string, any, error) { return state, d, nil })
	require.ErrorIs(t, RoundTrip(context.Background(), v1, bad, snap), ErrRoundTrip)
}

// A map with keys that msgpack writes as bins (a map[[16]byte]T: a UUID
// key) in an any field decodes as msgpack alone decodes it, a
// map[string]any; it failed with "hash of unhashable type []uint8" once
// maps with other keys decoded too. A key no Go map can hold is an error
// that says so.
func TestDecodeAnyMapsBinKeys(t *testing.T) {
	type data struct{ Extra any }
	id := [16]byte{'0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'}
	b, err := encode(data{Extra: map[[16]byte]int{id: 1}})
	require.NoError(t, err)
	var want, got data
	require.NoError(t, msgpack.Unmarshal(b, &want))
	require.NoError(t, decode(b, &got))
	require.Equal(t, data{Extra: map[string]any{"0123456789abcdef": int8(1)}}, got)
	require.Equal(t, want, got, "as msgpack alone")

	b, err = encode(data{Extra: map[[2]int]int{{1, 2}: 3}})
	require.NoError(t, err)
	var bad data
	require.ErrorContains(t, decode(b, &bad), "a map key that is []interface {} cannot be a Go map's key")
}
