package actor

import (
	"slices"
	"sync"
	"testing"
)

func TestQueueInsert(t *testing.T) {
	var pool sync.Pool
	for _, tt := range []struct{ n, at int }{
		{0, 0}, {3, 0}, {3, 1}, {3, 3}, {3, 9}, {segSize + 5, segSize}, {2*segSize + 1, 1},
	} {
		var q queue
		want := make([]envelope, 0, tt.n+1)
		for i := range tt.n {
			q.push(&pool, i)
			want = append(want, i)
		}
		q.insert(&pool, "x", tt.at)
		want = slices.Insert(want, min(tt.at, tt.n), envelope("x"))
		var got []envelope
		q.drain(&pool, func(e envelope) { got = append(got, e) })
		if !slices.Equal(got, want) {
			t.Errorf("insert at %d of %d: got %v, want %v", tt.at, tt.n, got, want)
		}
	}
}
