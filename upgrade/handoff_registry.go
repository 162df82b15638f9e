package upgrade

import (
	"cmp"
	"slices"
)

// registry holds what a Handoff carries (machines, connections) by key, in
// the order the keys were added: removal is O(1), which matters when every
// hang-up removes one of ten thousand, and the order is rebuilt only at a
// handoff. Its methods need the Handoff's lock.
type registry[V any] struct {
	m   map[string]registered[V]
	seq uint64
}

type registered[V any] struct {
	v   V
	seq uint64
}

// add registers v under k and reports false, changing nothing, if k is
// taken.
func (r *registry[V]) add(k string, v V) bool {
	if _, ok := r.m[k]; ok {
		return false
	}
	if r.m == nil {
		r.m = make(map[string]registered[V])
	}
	r.seq++
	r.m[k] = registered[V]{v: v, seq: r.seq}
	return true
}

func (r *registry[V]) remove(k string) { delete(r.m, k) }

func (r *registry[V]) len() int { return len(r.m) }

func (r *registry[V]) has(k string) bool {
	_, ok := r.m[k]
	return ok
}

func (r *registry[V]) get(k string) (V, bool) {
	e, ok := r.m[k]
	return e.v, ok
}

// mark returns the sequence number of the last add: [registry.after]
// of it returns what is added from now on.
func (r *registry[V]) mark() uint64 { return r.seq }

// keys returns the keys in the order they were added.
func (r *registry[V]) keys() []string { return r.after(0) }

// after returns the keys added (or removed and added again) since mark,
// in the order they were added.
func (r *registry[V]) after(mark uint64) []string {
	type entry struct {
		k   string
		seq uint64
	}
	var es []entry
	if mark == 0 {
		es = make([]entry, 0, len(r.m))
	}
	for k, e := range r.m {
		if e.seq > mark {
			es = append(es, entry{k, e.seq})
		}
	}
	slices.SortFunc(es, func(a, b entry) int { return cmp.Compare(a.seq, b.seq) })
	ks := make([]string, len(es))
	for i, e := range es {
		ks[i] = e.k
	}
	return ks
}
