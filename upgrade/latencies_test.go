package upgrade_test

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The benchmarks' latency histogram puts every duration in a bucket whose
// floor is within 1% below it, and its p99 is that of the sorted durations
// within 1%.
func TestLatencies(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	var l latencies
	var all []time.Duration
	for i := range 100_000 {
		d := time.Duration(rnd.Int64N(int64(time.Millisecond)))
		if i%50 == 0 {
			d = time.Duration(rnd.Int64N(int64(time.Hour))) // a tail
		}
		all = append(all, d)
		l.add(d)
		f := bucketFloor(latencyBucket(d))
		require.LessOrEqual(t, f, d, "%v", d)
		require.Less(t, float64(d-f), float64(f)/128+1, "%v in a bucket from %v", d, f)
	}
	for _, d := range []time.Duration{0, 1, 255, 256, 257, 1<<62 + 12345, -5} {
		f := bucketFloor(latencyBucket(d))
		require.LessOrEqual(t, f, max(d, 0))
		require.Less(t, float64(max(d, 0)-f), float64(f)/128+1, "%v", d)
	}
	require.EqualValues(t, len(all), l.count())
	slices.Sort(all)
	want := all[len(all)*99/100]
	require.InEpsilon(t, float64(want), float64(l.p99()), 0.01)
	require.LessOrEqual(t, l.p99(), want)

	var m latencies
	m.merge(&l)
	m.merge(&l)
	require.Equal(t, 2*l.count(), m.count())
	require.Equal(t, l.p99(), m.p99())
}
