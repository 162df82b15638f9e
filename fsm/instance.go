package fsm

import (
	"fmt"
	"unsafe"
)

// instance is a Machine's Instance: the data stays a Go value.
type instance[D any] struct {
	m     *Machine[D]
	t     *table[D]
	state string
	idx   int // of state in t, or -1 for a state with no handlers
	data  D

	// The handler of the last event handled in this state, and the type
	// word of its payload: the next event is most often of the same type,
	// and then needs no lookup. Forgotten when the state changes.
	hotType unsafe.Pointer
	hot     handler[D]

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
	if in.hot != nil && typeWord(ev.Payload) == in.hotType {
		acts, err := in.hot(ev.Payload, in)
		return in.state, acts, err
	}
	return in.handle(ev)
}

// handle is Handle without the hot handler.
func (in *instance[D]) handle(ev Event) (string, []Action, error) {
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
	if same {
		in.hotType, in.hot = e.word, h
	} else {
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

// take applies a handler's Result.
func (in *instance[D]) take(r Result[D]) ([]Action, error) {
	if r.acts == &keepHead {
		in.data = r.data
		return nil, nil
	}
	return in.apply(&r, false)
}

func (in *instance[D]) apply(r *Result[D], enter bool) ([]Action, error) {
	next, ok := r.next()
	if !ok {
		return nil, fmt.Errorf("%w: %s %s: a handler in state %q returned the zero Result", ErrBadResult, in.m.name, in.m.version, in.state)
	}
	if next && r.state != in.state {
		if r.state == "" || enter {
			return nil, fmt.Errorf("%w: %s %s: state %q: bad next state %q", ErrBadResult, in.m.name, in.m.version, in.state, r.state)
		}
		in.state, in.idx = r.state, in.t.index(r.state)
		in.hotType, in.hot = nil, nil
	}
	in.data = r.data
	return r.actions(), nil
}
