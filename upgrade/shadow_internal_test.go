package upgrade

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// Two versions' replies of different types are the same when they are
// the same msgpack value, whatever order a map's keys are written in.
func TestSameReply(t *testing.T) {
	type r1 struct{ Count map[string]int }
	type r2 struct{ Count map[string]int64 }
	a, b := r1{Count: map[string]int{}}, r2{Count: map[string]int64{}}
	for i := range 20 {
		a.Count[fmt.Sprint("k", i)] = i
		b.Count[fmt.Sprint("k", i)] = int64(i)
	}
	for range 10 {
		require.True(t, sameReply(a, b))
	}
	b.Count["k3"] = -1
	require.False(t, sameReply(a, b))
	require.True(t, sameReply(7, 7))
	require.False(t, sameReply(7, 8))
	require.True(t, sameReply(errors.New("x"), errors.New("x")))
	require.False(t, sameReply(errors.New("x"), "x"))
}

// Replies holding a NaN float are the same when they are the same
// msgpack value: a shadow counted every such reply a divergence once
// replies were compared as decoded values (NaN is equal to nothing).
func TestSameReplyNaN(t *testing.T) {
	type r1 struct {
		Mean  float64
		Marks map[string]float32
	}
	type r2 struct {
		Mean  float64
		Marks map[string]float64
	}
	nan := math.NaN()
	require.True(t, sameReply(nan, nan))
	require.True(t, sameReply(r1{Mean: nan}, r1{Mean: nan}))
	require.True(t, sameReply(r1{Mean: nan, Marks: map[string]float32{"a": float32(nan), "b": 1}}, r2{Mean: nan, Marks: map[string]float64{"a": nan, "b": 1}}))
	require.False(t, sameReply(r1{Mean: nan}, r1{Mean: 1}))
	require.False(t, sameReply(nan, 1.0))
}

// An int reply and another version's int64 (or uint8, or float) reply of
// the same value are the same msgpack value: the fast path for two ints
// counted them a divergence, where the other order (int64, int) was not.
func TestSameReplyIntWidths(t *testing.T) {
	require.True(t, sameReply(7, int64(7)))
	require.True(t, sameReply(int64(7), 7))
	require.True(t, sameReply(7, uint8(7)))
	require.True(t, sameReply(-1, int32(-1)))
	require.False(t, sameReply(7, int64(8)))
	require.False(t, sameReply(7, "7"))
	require.False(t, sameReply(7, nil))
}
