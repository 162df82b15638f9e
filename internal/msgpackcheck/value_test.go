package msgpackcheck_test

import (
	"bytes"
	"math"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/internal/msgpackcheck"
)

// Value decodes maps of any key type, in whatever order their keys were
// written, and numbers of any width, to values that compare equal when
// the msgpack values are equal, and unequal when they are not.
func TestValue(t *testing.T) {
	type v1 struct {
		Counts map[string]int
		ByID   map[int]string
		Nested map[string]map[int8]uint16
		N      int32
		F      float32
	}
	type v2 struct { // the same shape, other types and widths
		Counts map[string]int64
		ByID   map[int64]string
		Nested map[string]map[int]int
		N      int64
		F      float64
	}
	counts := map[string]int{}
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"} {
		counts[k] = len(counts)
	}
	a := v1{Counts: counts, ByID: map[int]string{1: "x", 2: "y", 3: "z"}, Nested: map[string]map[int8]uint16{"n": {1: 2, 3: 4}}, N: 7, F: 0.5}
	b := v2{Counts: map[string]int64{}, ByID: map[int64]string{3: "z", 2: "y", 1: "x"}, Nested: map[string]map[int]int{"n": {3: 4, 1: 2}}, N: 7, F: 0.5}
	for k, n := range counts {
		b.Counts[k] = int64(n)
	}
	value := func(x any) any {
		raw, err := msgpack.Marshal(x)
		require.NoError(t, err)
		v, err := msgpackcheck.Value(raw)
		require.NoError(t, err)
		return v
	}
	for range 20 { // the maps' keys go out in another order each time
		require.True(t, reflect.DeepEqual(value(a), value(b)))
	}
	b.ByID[2] = "w"
	require.False(t, reflect.DeepEqual(value(a), value(b)))

	_, err := msgpackcheck.Value([]byte{0x91}) // an array of one, without it
	require.Error(t, err)
	_, err = msgpackcheck.Value([]byte{0x81, 0x91}) // {[1]: ?}
	require.Error(t, err)
}

// value is x encoded by msgpack, as Value decodes it.
func value(t *testing.T, x any) any {
	t.Helper()
	raw, err := msgpack.Marshal(x)
	require.NoError(t, err)
	v, err := msgpackcheck.Value(raw)
	require.NoError(t, err)
	return v
}

// NaN floats, which are equal to nothing, are equal in Values: the same
// bytes decoded twice were values DeepEqual found unequal.
func TestValueNaN(t *testing.T) {
	type data struct {
		F  float64
		G  float32
		Fs []float64
		M  map[string]float32
	}
	nan := math.NaN()
	a := data{F: nan, G: float32(nan), Fs: []float64{1, nan}, M: map[string]float32{"x": float32(nan)}}
	require.True(t, reflect.DeepEqual(value(t, a), value(t, a)))
	b := a
	b.Fs = []float64{1, 2}
	require.False(t, reflect.DeepEqual(value(t, a), value(t, b)))
	require.False(t, reflect.DeepEqual(value(t, nan), value(t, 0.0)))
}

type point struct{ X, Y int }

// Map keys that are arrays or maps (a Go map[[2]int]string, a map whose
// keys are structs, which msgpack writes as maps) decode: Value failed on
// them ("hash of unhashable type []interface {}"), and fsm.RoundTrip with
// it, on data that encodes and decodes well. A map's NaN keys, one or
// many, compare by their values, whatever order they are written in.
func TestValueMapKeys(t *testing.T) {
	arrays := map[[2]int]string{{1, 2}: "a", {3, 4}: "b", {5, 6}: "c", {7, 8}: "d"}
	arrays64 := map[[2]int64]string{{7, 8}: "d", {5, 6}: "c", {3, 4}: "b", {1, 2}: "a"}
	points := map[point][]int{{1, 2}: {1}, {3, 4}: {2}, {5, 6}: nil, {7, 8}: {}}
	nested := map[string]map[point]bool{"n": {{1, 1}: true, {2, 2}: false}}
	nan := math.NaN()
	nans := map[float64]int{nan: 1, 1.5: 2}
	nans[nan] = 3
	nans[nan] = 4
	for range 20 { // the keys go out in another order each time
		require.True(t, reflect.DeepEqual(value(t, arrays), value(t, arrays64)))
		require.True(t, reflect.DeepEqual(value(t, points), value(t, points)))
		require.True(t, reflect.DeepEqual(value(t, nested), value(t, nested)))
		require.True(t, reflect.DeepEqual(value(t, nans), value(t, nans)))
	}

	arrays64[[2]int64{3, 4}] = "changed"
	require.False(t, reflect.DeepEqual(value(t, arrays), value(t, arrays64)))
	delete(arrays64, [2]int64{3, 4})
	arrays64[[2]int64{4, 3}] = "b"
	require.False(t, reflect.DeepEqual(value(t, arrays), value(t, arrays64)))
	other := map[point][]int{{1, 2}: {1}, {3, 4}: {2}, {5, 6}: {}, {7, 8}: {}}
	require.False(t, reflect.DeepEqual(value(t, points), value(t, other)))
	other = map[point][]int{{1, 2}: {1}, {3, 4}: {2}, {5, 6}: nil, {8, 7}: {}}
	require.False(t, reflect.DeepEqual(value(t, points), value(t, other)))
	fewer := map[float64]int{nan: 1, 1.5: 2}
	fewer[nan] = 4
	require.False(t, reflect.DeepEqual(value(t, nans), value(t, fewer)))
	fewer[nan] = 3
	require.True(t, reflect.DeepEqual(value(t, nans), value(t, fewer)))
	// A key [1] and a key "[1]" are not one key.
	keys := [][]byte{{0x81, 0x91, 0x01, 0x02}, {0x81, 0xa3, '[', '1', ']', 0x02}}
	vs := make([]any, len(keys))
	for i, b := range keys {
		var err error
		vs[i], err = msgpackcheck.Value(b)
		require.NoError(t, err)
	}
	require.False(t, reflect.DeepEqual(vs[0], vs[1]))
}

// FuzzValue: Value never panics, and the same bytes give values that
// DeepEqual finds equal (NaN, whose values were unequal, and keys that are
// arrays or maps, which failed, included); a map written again in another
// order of its pairs gives an equal value, unless those pairs have one key
// (then the last one written is the map's, as a decoder into a Go map or
// struct has it).
func FuzzValue(f *testing.F) {
	nan := math.NaN()
	for _, v := range []any{nil, 1, "s", []any{1, []any{2}}, map[string]any{"a": 1.5}, nan,
		map[[2]int]string{{1, 2}: "a"}, map[point]float64{{1, 2}: nan}, map[float64]int{nan: 1, 2: 3}} {
		b, err := msgpack.Marshal(v)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte{0x82, 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1, 0x01, 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1, 0x02}) // {NaN: 1, NaN: 2}
	f.Fuzz(func(t *testing.T, b []byte) {
		v1, err := msgpackcheck.Value(b)
		if err != nil {
			return
		}
		v2, err := msgpackcheck.Value(b)
		require.NoError(t, err)
		require.True(t, reflect.DeepEqual(v1, v2), "% x", b)
		if len(b) > 0 && b[0]&0xf0 == 0x80 && b[0] > 0x81 { // a fixmap of two pairs or more
			if k1, e1, k2, e2, ok := firstPairs(b); ok && !sameKey(b[1:k1], b[e1:k2]) {
				r := append([]byte{b[0]}, b[e1:e2]...) // the first two pairs swapped
				r = append(append(r, b[1:e1]...), b[e2:]...)
				v3, err := msgpackcheck.Value(r)
				require.NoError(t, err, "% x", r)
				require.True(t, reflect.DeepEqual(v1, v3), "% x / % x", b, r)
			}
		}
	})
}

// firstPairs returns where the first two pairs of b, a fixmap, end: the
// first key at k1, its value at v1, the second key at k2, its value at v2.
func firstPairs(b []byte) (k1, v1, k2, v2 int, ok bool) {
	end := func(at int) int { // the end of the value at b[at:], or 0
		for n := at + 1; n <= len(b); n++ {
			if msgpackcheck.Check(b[at:n]) == nil {
				return n
			}
		}
		return 0
	}
	if k1 = end(1); k1 == 0 {
		return
	}
	if v1 = end(k1); v1 == 0 {
		return
	}
	if k2 = end(v1); k2 == 0 {
		return
	}
	v2 = end(k2)
	return k1, v1, k2, v2, v2 != 0
}

// sameKey reports whether two keys are one key of a map (NaN included).
func sameKey(a, b []byte) bool {
	va, err1 := msgpackcheck.Value(a)
	vb, err2 := msgpackcheck.Value(b)
	return err1 == nil && err2 == nil && reflect.DeepEqual(va, vb)
}

// DecodeMap decodes a map into an any as msgpack alone does when msgpack
// can (keys that are strs or bins: a map[[2]byte]int writes its keys as
// bins, and failed with "hash of unhashable type []uint8"), as a
// map[any]any when a key is not, and a key that no Go map can hold is an
// error that says so.
func TestDecodeMap(t *testing.T) {
	decodeAny := func(b []byte) (any, error) {
		d := msgpack.NewDecoder(bytes.NewReader(b))
		d.SetMapDecoder(msgpackcheck.DecodeMap)
		var v any
		err := d.Decode(&v)
		return v, err
	}
	for _, x := range []any{
		map[string]int{"a": 1, "b": 2},
		map[[2]byte]int{{'a', 'b'}: 1, {'c', 'd'}: 2},
		map[string]any{"n": map[[1]byte][]any{{'z'}: {map[string]bool{"t": true}}}},
		map[string]int{},
	} {
		b, err := msgpack.Marshal(x)
		require.NoError(t, err)
		var want any
		require.NoError(t, msgpack.Unmarshal(b, &want))
		got, err := decodeAny(b)
		require.NoError(t, err, "%#v", x)
		require.Equal(t, want, got, "%#v: as msgpack alone", x)
	}

	for _, tt := range []struct {
		x    any
		want any
	}{
		{map[int]string{1: "a", 2: "b"}, map[any]any{int8(1): "a", int8(2): "b"}},
		{map[any]int{"s": 1, 2: 3, true: 4}, map[any]any{"s": int8(1), int8(2): int8(3), true: int8(4)}},
		{[]any{map[any]any{[2]byte{'x', 'y'}: 1, 7: map[int]int{1: 2}}}, []any{map[any]any{"xy": int8(1), int8(7): map[any]any{int8(1): int8(2)}}}},
	} {
		b, err := msgpack.Marshal(tt.x)
		require.NoError(t, err)
		got, err := decodeAny(b)
		require.NoError(t, err, "%#v", tt.x)
		require.Equal(t, tt.want, got, "%#v", tt.x)
	}

	_, err := decodeAny([]byte{0x82, 0xa1, 'a', 0x01, 0x91, 0x01, 0x02}) // {"a": 1, [1]: 2}
	require.ErrorContains(t, err, "a map key that is []interface {} cannot be a Go map's key")
	_, err = decodeAny([]byte{0x81, 0x80, 0x02}) // {{}: 2}
	require.ErrorContains(t, err, "a map key that is map[string]interface {} cannot be a Go map's key")
	v, err := decodeAny([]byte{0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02}) // {"a": 1, "a": 2}
	require.NoError(t, err)
	require.Equal(t, map[string]any{"a": int8(2)}, v, "the last of two equal keys, as msgpack")
}
