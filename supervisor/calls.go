package supervisor

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/hotline-go/hotline/actor"
)

// A request is a Call to a supervisor, answered by serve on the
// supervisor's goroutine.
type request interface {
	serve(s *supervisor, c *actor.Context) (any, error)
}

func (s *supervisor) handle(c *actor.Context, r request) {
	v, err := r.serve(s, c)
	if err != nil {
		c.ReplyError(err)
		return
	}
	c.Reply(v)
}

type startChildReq struct{ args []any }

func (r startChildReq) serve(s *supervisor, c *actor.Context) (any, error) {
	if s.strategy != SimpleOneForOne {
		return nil, fmt.Errorf("supervisor: StartChild on a %v supervisor: %w", s.strategy, ErrStrategy)
	}
	s.seq++
	ch := &child{spec: s.template, args: r.args, seq: s.seq}
	if err := s.startChild(c, ch); err != nil {
		return nil, &StartError{Child: ch.spec.ID, Err: err}
	}
	if ch.status == Running {
		s.dynamic[ch] = true
	}
	return ch.ref, nil
}

type addChildReq struct{ spec ChildSpec }

func (r addChildReq) serve(s *supervisor, c *actor.Context) (any, error) {
	if s.strategy == SimpleOneForOne {
		return nil, fmt.Errorf("supervisor: AddChild: %w", ErrStrategy)
	}
	if r.spec.ID == "" {
		return nil, fmt.Errorf("%w: the child has no ID", ErrBadSpec)
	}
	if err := r.spec.validate(); err != nil {
		return nil, err
	}
	if old := s.find(r.spec.ID); old != nil {
		if old.status == Running {
			return nil, fmt.Errorf("supervisor: child %q: %w", r.spec.ID, ErrRunning)
		}
		return nil, fmt.Errorf("supervisor: child %q: %w", r.spec.ID, ErrAlreadyPresent)
	}
	ch := &child{spec: r.spec}
	s.children = append(s.children, ch)
	if err := s.startChild(c, ch); err != nil {
		s.remove(ch)
		return nil, &StartError{Child: ch.spec.ID, Err: err}
	}
	return ch.ref, nil
}

// terminateReq names the child by ID, or by Ref when byRef is set.
type terminateReq struct {
	id    string
	ref   actor.Ref
	byRef bool
}

func (r terminateReq) serve(s *supervisor, c *actor.Context) (any, error) {
	var ch *child
	switch {
	case r.byRef:
		ch = s.running(r.ref)
	case s.strategy == SimpleOneForOne:
		return nil, fmt.Errorf("supervisor: TerminateChild by ID: %w (name the child by its Ref)", ErrStrategy)
	default:
		ch = s.find(r.id)
	}
	if ch == nil {
		if r.byRef {
			return nil, fmt.Errorf("supervisor: child %v: %w", r.ref, ErrNotFound)
		}
		return nil, fmt.Errorf("supervisor: child %q: %w", r.id, ErrNotFound)
	}
	s.stopChild(c, ch)
	if ch.spec.Restart == Temporary || s.strategy == SimpleOneForOne {
		s.remove(ch)
	}
	return nil, nil
}

type restartReq struct{ id string }

func (r restartReq) serve(s *supervisor, c *actor.Context) (any, error) {
	ch, err := s.stoppedChild("RestartChild", r.id)
	if err != nil {
		return nil, err
	}
	if err := s.startChild(c, ch); err != nil {
		return nil, &StartError{Child: ch.spec.ID, Err: err}
	}
	return ch.ref, nil
}

type deleteReq struct{ id string }

func (r deleteReq) serve(s *supervisor, _ *actor.Context) (any, error) {
	ch, err := s.stoppedChild("DeleteChild", r.id)
	if err != nil {
		return nil, err
	}
	s.remove(ch)
	return nil, nil
}

// stoppedChild finds the static child id, which must have no process.
func (s *supervisor) stoppedChild(op, id string) (*child, error) {
	if s.strategy == SimpleOneForOne {
		return nil, fmt.Errorf("supervisor: %s: %w", op, ErrStrategy)
	}
	ch := s.find(id)
	switch {
	case ch == nil:
		return nil, fmt.Errorf("supervisor: child %q: %w", id, ErrNotFound)
	case ch.status == Running:
		return nil, fmt.Errorf("supervisor: child %q: %w", id, ErrRunning)
	case ch.status == Restarting:
		return nil, fmt.Errorf("supervisor: child %q: %w", id, ErrRestarting)
	}
	return ch, nil
}

func (s *supervisor) find(id string) *child {
	for _, ch := range s.children {
		if ch.spec.ID == id {
			return ch
		}
	}
	return nil
}

type whichReq struct{}

func (whichReq) serve(s *supervisor, _ *actor.Context) (any, error) {
	all := s.children
	if s.strategy == SimpleOneForOne {
		all = make([]*child, 0, len(s.dynamic))
		for ch := range s.dynamic {
			all = append(all, ch)
		}
		slices.SortFunc(all, func(a, b *child) int { return cmp.Compare(a.seq, b.seq) })
	}
	out := make([]Child, len(all))
	for i, ch := range all {
		out[i] = Child{
			ID:         ch.spec.ID,
			Ref:        ch.ref,
			Status:     ch.status,
			Spec:       ch.spec,
			Args:       ch.args,
			Supervisor: s.self,
		}
	}
	return out, nil
}

type countReq struct{}

func (countReq) serve(s *supervisor, _ *actor.Context) (any, error) {
	var n Counts
	count := func(ch *child) {
		if ch.status == Running {
			n.Active++
		}
		if ch.spec.Kind == Subtree {
			n.Supervisors++
		} else {
			n.Workers++
		}
	}
	if s.strategy == SimpleOneForOne {
		n.Specs = 1
		for ch := range s.dynamic {
			count(ch)
		}
		return n, nil
	}
	n.Specs = len(s.children)
	for _, ch := range s.children {
		count(ch)
	}
	return n, nil
}
