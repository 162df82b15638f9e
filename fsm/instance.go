package fsm

import (
	"fmt"
	"unsafe"
)

// instance is a Machine's Instance: the data stays a Go value.
//
// The fields every event reads and writes (hot, data) are kept 64 bytes
// from either end of the struct, so that they never share a cache line
// with another object: an instance is allocated just before its machine's
// actor, of the same size class, and every sender writes that actor's
// lock. (Without the padding, each event's read of hot took that line
// from the sender's core.)
type instance[D any] struct {
	_ [64]byte

	// The handler of the last event handled in this state: the next event
	// is most often of the same type, and then needs no lookup. Forgotten
	// when the state changes. The runtime calls it directly (see hot).
	hot  hot
	data D

	// 48 bytes of what the direct path does not read, then padding.
	state string
	idx   int // of state in t, or -1 for a state with no handlers
	m     *Machine[D]
	t     *table[D]
	flags *Flags // for flag-reading handlers; nil: every flag off
	_     [16]byte
}

// hotFunc is a handler[D] for any D.
type hotFunc func(payload any, in unsafe.Pointer) ([]Action, error)

// hot is the handler an in-process instance took for the last event in
// its state, with what the runtime needs to call it without the Instance
// interface: the type word of the payloads it takes, and the instance.
// The instance clears fn when its state changes, so that after a call
// a nil fn tells the caller that the state changed.
type hot struct {
	word unsafe.Pointer // the type word of the payload
	fn   hotFunc        // nil: none
	in   unsafe.Pointer // the *instance[D] fn applies to
}

// hotInstance is an Instance with a hot handler: those of a Machine.
type hotInstance interface {
	hotSlot() *hot
}

func (in *instance[D]) hotSlot() *hot { return &in.hot }

func (in *instance[D]) State() string { return in.state }

func (in *instance[D]) Encode() ([]byte, error) {
	b, err := encode(in.data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %w", ErrBadData, in.m.name, in.m.version, err)
	}
	return b, nil
}

func (in *instance[D]) Handle(ev Event) (string, []Action, error) {
	if in.hot.fn != nil && typeWord(ev.Payload) == in.hot.word {
		acts, err := in.hot.fn(ev.Payload, unsafe.Pointer(in))
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
			acts, err := in.apply(r, false)
			return in.state, acts, err
		}
		return in.state, nil, fmt.Errorf("%w %s in state %q of %s %s", ErrUnknownEvent, ev.Name(), in.state, in.m.name, in.m.version)
	}
	p := ev.Payload
	if same {
		in.hot = hot{word: e.word, fn: hotFunc(h), in: unsafe.Pointer(in)}
	} else {
		var err error
		if p, err = e.convert(p); err != nil {
			return in.state, nil, fmt.Errorf("%w (%s %s, state %q)", err, in.m.name, in.m.version, in.state)
		}
	}
	acts, err := h(p, unsafe.Pointer(in))
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
	return in.apply(r, true)
}

// apply applies a handler's Result.
func (in *instance[D]) apply(r Result[D], enter bool) ([]Action, error) {
	next, ok := r.next()
	if !ok {
		return nil, fmt.Errorf("%w: %s %s: a handler in state %q returned the zero Result", ErrBadResult, in.m.name, in.m.version, in.state)
	}
	if next && r.state != in.state {
		if enter {
			return nil, fmt.Errorf("%w: %s %s: an enter handler of state %q may not change the state (to %q)", ErrBadResult, in.m.name, in.m.version, in.state, r.state)
		}
		if r.state == "" {
			return nil, fmt.Errorf("%w: %s %s: state %q: bad next state %q", ErrBadResult, in.m.name, in.m.version, in.state, r.state)
		}
		in.state, in.idx = r.state, in.t.index(r.state)
		in.hot = hot{}
	}
	in.data = r.data
	return r.actions(), nil
}
