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

func TestSurvivors(t *testing.T) {
	list := []any{"a", "b", "c", "d"}
	for _, tt := range []struct {
		dropped []int
		want    []any
	}{
		{nil, list},
		{[]int{0, 0}, []any{"c", "d"}},      // two from the head
		{[]int{1}, []any{"a", "c", "d"}},    // behind a signal at the head
		{[]int{1, 1}, []any{"a", "d"}},      // twice behind it
		{[]int{4, 3}, []any{"a", "b", "c"}}, // a newer message, then d
		{[]int{0, 0, 0, 0, 0}, []any{}},     // all, then a newer one
		{[]int{3, 0, 1}, []any{"b"}},        // d, a, c
	} {
		if got := survivors(list, tt.dropped); !slices.Equal(got, tt.want) {
			t.Errorf("drops %v: got %v, want %v", tt.dropped, got, tt.want)
		}
	}
}

func TestOldestDroppable(t *testing.T) {
	var pool sync.Pool
	var q queue
	if i := q.oldestDroppable(); i != -1 {
		t.Fatalf("empty queue: %d", i)
	}
	q.push(&pool, Down{})
	q.push(&pool, Exit{})
	if i := q.oldestDroppable(); i != -1 {
		t.Fatalf("only signals: %d", i)
	}
	q.push(&pool, "m")
	if i := q.oldestDroppable(); i != 2 {
		t.Fatalf("behind two signals: %d", i)
	}
	if old := q.replace(&pool, 2, "n"); old != "m" {
		t.Fatalf("replaced %v", old)
	}
	var got []envelope
	q.drain(&pool, func(e envelope) { got = append(got, e) })
	if !slices.Equal(got, []envelope{Down{}, Exit{}, "n"}) {
		t.Fatalf("after replace: %v", got)
	}
}

func TestQueueRemove(t *testing.T) {
	var pool sync.Pool
	var q queue
	if n := q.remove(&pool, func(envelope) bool { return true }); n != 0 {
		t.Fatalf("empty queue: removed %d", n)
	}
	for i := range segSize + 3 {
		q.push(&pool, i)
	}
	n := q.remove(&pool, func(e envelope) bool { return e.(int)%2 == 1 })
	if n != (segSize+3)/2 {
		t.Fatalf("removed %d", n)
	}
	var got []envelope
	q.drain(&pool, func(e envelope) { got = append(got, e) })
	for i, e := range got {
		if e != 2*i {
			t.Fatalf("left %v", got)
		}
	}
}
