package actor

import "testing"

func TestLinkSet(t *testing.T) {
	a, b, c := new(actor), new(actor), new(actor)
	var s linkSet
	s.add(a)
	s.add(a)
	if s.one != a || s.many != nil {
		t.Fatalf("one link, added twice: one=%p many=%v", s.one, s.many)
	}
	s.add(b)
	if s.one != nil || len(s.many) != 2 {
		t.Fatalf("a second link moves both to the map: one=%p many=%d", s.one, len(s.many))
	}
	if !s.has(a) || !s.has(b) || s.has(c) {
		t.Fatal("has: a and b in the map, c not")
	}
	s.add(c)
	s.remove(b)
	s.remove(b)
	if _, ok := s.many[b]; ok || len(s.many) != 2 {
		t.Fatalf("after removing b: %d links, b present %v", len(s.many), ok)
	}
	if _, ok := s.many[c]; !ok {
		t.Fatal("c was lost")
	}

	var one linkSet
	one.add(a)
	one.remove(b)
	if one.one != a {
		t.Fatal("removing a link it does not hold dropped the one it holds")
	}
	if !one.has(a) || one.has(b) || one.has(nil) {
		t.Fatal("has: a held in place, b and nil not")
	}
	one.remove(a)
	if one.one != nil || one.many != nil {
		t.Fatalf("empty set still holds %p, %v", one.one, one.many)
	}
}
