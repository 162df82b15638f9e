package actor

// linkSet is an actor's set of links. Most actors have one link (their
// supervisor) or none, so the first link is held in place and a map is
// made only for a second: linking a new child costs no allocation.
type linkSet struct {
	one  *actor              // a link, when many is nil
	many map[*actor]struct{} // every link, once there were two at once
}

func (s *linkSet) add(b *actor) {
	switch {
	case s.many != nil:
		s.many[b] = struct{}{}
	case s.one == nil || s.one == b:
		s.one = b
	default:
		s.many = map[*actor]struct{}{s.one: {}, b: {}}
		s.one = nil
	}
}

func (s *linkSet) remove(b *actor) {
	if s.many != nil {
		delete(s.many, b)
	} else if s.one == b {
		s.one = nil
	}
}
