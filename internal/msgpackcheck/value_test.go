package msgpackcheck_test

import (
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
	_, err = msgpackcheck.Value([]byte{0x81, 0x91, 0x01, 0x02}) // {[1]: 2}: a key that cannot be a map key
	require.Error(t, err)
}
