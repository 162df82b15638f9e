package fsm

import "fmt"

// instance is a Machine's Instance: the data stays a Go value.
type instance[D any] struct {
	m     *Machine[D]
	t     *table[D]
	state string
	idx   int // of state in t, or -1 for a state with no handlers
	data  D
	flags *Flags // for flag-reading handlers; nil: every flag off
}

func (in *instance[D]) State() string { return in.state }

func (in *instance[D]) Encode() ([]byte, error) {
	b, err := encode(in.data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %w", ErrBadData, in.m.name, in.m.version, err)
	}
	return b, nil
}

func (in *instance[D]) Handle(ev Event) (string, []Action, error) {
	e, same := in.t.lookup(ev.Payload)
	var h handler[D]
	if e != nil {
		if in.idx >= 0 {
			h = e.byState[in.idx]
		}
		if h == nil {
			h = e.anyState
		}
	}
	if h == nil {
		if in.m.unknown != nil {
			r := in.m.unknown(ev, in.data)
			acts, err := in.apply(&r, false)
			return in.state, acts, err
		}
		return in.state, nil, fmt.Errorf("%w %s in state %q of %s %s", ErrUnknownEvent, ev.Name(), in.state, in.m.name, in.m.version)
	}
	p := ev.Payload
	if !same {
		var err error
		if p, err = e.convert(p); err != nil {
			return in.state, nil, fmt.Errorf("%w (%s %s, state %q)", err, in.m.name, in.m.version, in.state)
		}
	}
	acts, err := h(p, in)
	return in.state, acts, err
}

func (in *instance[D]) Enter(prev string) ([]Action, error) {
	if in.idx < 0 {
		return nil, nil
	}
	h := in.t.enter[in.idx]
	if h == nil {
		return nil, nil
	}
	r := h(prev, in.data)
	return in.apply(&r, true)
}

func (in *instance[D]) apply(r *Result[D], enter bool) ([]Action, error) {
	if r.kind == resultNone {
		return nil, fmt.Errorf("%w: %s %s: a handler in state %q returned the zero Result", ErrBadResult, in.m.name, in.m.version, in.state)
	}
	if r.kind == resultNext && r.state != in.state {
		if r.state == "" || enter {
			return nil, fmt.Errorf("%w: %s %s: state %q: bad next state %q", ErrBadResult, in.m.name, in.m.version, in.state, r.state)
		}
		in.state, in.idx = r.state, in.t.index(r.state)
	}
	in.data = r.data
	return r.actions, nil
}
