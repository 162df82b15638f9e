package fsm

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/hotline-go/hotline/internal/msgpackcheck"

	"github.com/vmihailenco/msgpack/v5"
)

// A Machine is one version of a machine's code written in Go: the table of
// handlers of DESIGN.md, a row per event type and a column per state, plus
// the UPGRADE row. D is the type of the machine's data; every handler gets
// it and returns it, typed. A *Machine is a [Code].
//
// Make one with [Define], fill its table with [On], [OnAny],
// [Machine.Enter], [Machine.OnUpgrade] and the rest, then use it: from its
// first use as a Code (by [Start], or a change of code) the table is fixed,
// and changing it panics. A Machine is then safe for concurrent use, and
// one Machine serves every machine of that version.
//
// D must encode as msgpack (exported fields, or msgpack tags): that is how
// the data crosses to another version. Handlers get D by value; a D that
// holds maps or slices shares them with the value it was copied from.
type Machine[D any] struct {
	name, version string
	initState     string
	initData      D
	initFunc      func(id string) (string, D)
	upgrade       func(from, state string, data msgpack.RawMessage) (string, D, error)
	downgrade     func(to, state string, data D) (string, any, error)
	unknown       func(ev Event, data D) Result[D]
	upFrom        []string // declared by UpgradesFromVersions; nil: undeclared
	downTo        []string // declared by DowngradesToVersions; nil: undeclared

	states  map[string]int // state -> index in handler tables
	enter   map[string]func(prev string, data D) Result[D]
	entries []*entry[D] // in order of declaration

	frozen atomic.Bool
	once   sync.Once
	tab    table[D] // built at the first use, read-only after
}

// handler is a typed handler with its event type erased: it runs the
// handler on the data of in, an *instance[D], and applies the Result to
// it. (Applying it here, field by field, spares the path every event
// takes a copy of the whole Result through memory.) The instance is passed
// as an unsafe.Pointer so that every handler[D] converts to hotFunc, which
// the runtime calls without knowing D.
type handler[D any] func(payload any, in unsafe.Pointer) ([]Action, error)

// An entry is everything a Machine knows about one event type.
type entry[D any] struct {
	typ      reflect.Type
	word     unsafe.Pointer // the type word of an interface holding an E
	name     string
	inState  map[string]handler[D]
	anyState handler[D]
	upgrade  func(raw msgpack.RawMessage) (any, error)
	decode   func(raw []byte) (any, error) // into the entry's type

	byState []handler[D] // by state index; built at the first use
}

// table is a Machine's dispatch table, built at the first use.
type table[D any] struct {
	states  map[string]int
	enter   []func(prev string, data D) Result[D] // by state index
	types   []unsafe.Pointer                      // type words of entries, for a short scan
	entries []*entry[D]
	byType  map[unsafe.Pointer]*entry[D] // when there are too many to scan
	byName  map[string]*entry[D]
	copy    copyFunc // copies a D (see Stager); nil: D cannot be copied so
}

// Above this many event types, dispatch uses a map instead of a scan.
const scanTypes = 8

// Define starts the definition of version version of the machine called
// machine, whose new machines start in state with data. It panics if a
// name is empty.
func Define[D any](machine, version, state string, data D) *Machine[D] {
	if machine == "" || version == "" || state == "" {
		panic("fsm: Define needs a machine name, a version and an initial state")
	}
	return &Machine[D]{
		name: machine, version: version,
		initState: state, initData: data,
		states: make(map[string]int),
		enter:  make(map[string]func(string, D) Result[D]),
	}
}

// A Result is what a handler returns: the next state, the new data and
// the actions to run. Make one with [Next], [Keep] or [StopWith]; the zero
// Result is an error that stops the machine (ErrBadResult). A Result may
// be copied; it does not share the actions slice it was made from.
type Result[D any] struct {
	// Three fields, and no more than four words when D is one word (a
	// counter, a pointer): the compiler then keeps a Result in registers
	// from the handler to the runtime instead of copying it through
	// memory, which more than halved the cost of an event.
	data  D
	state string  // Next's; "" for Keep
	acts  *Action // head of the actions; nil in the zero Result
}

// The head of a Result's actions is a hidden Action before the first one:
// its kind says Keep or Next, its after how many actions follow. A Result
// without actions points at one of these, so that Keep and Next allocate
// nothing. A Keep with actions points at keepActs and keeps its actions
// where Next keeps its state (a Keep has none): the header of a string
// whose bytes are the actions and whose length is their number, so that
// they take one allocation of their own size, as a variadic slice would.
var (
	keepHead = Action{kind: headKeep}
	nextHead = Action{kind: headNext}
	keepActs = Action{kind: headKeep}
)

// keepWith is Keep with actions.
func keepWith[D any](data D, actions []Action) Result[D] {
	a := make([]Action, len(actions))
	copy(a, actions)
	return Result[D]{data: data, state: unsafe.String((*byte)(unsafe.Pointer(&a[0])), len(a)), acts: &keepActs}
}

// nextWith is Next with actions.
func nextWith[D any](state string, data D, actions []Action) Result[D] {
	return Result[D]{data: data, state: state, acts: withHead(headNext, actions)}
}

// withHead copies actions behind a head of kind, so that a Result holds
// them in one allocation and the caller's variadic slice stays on its
// stack.
func withHead(kind ActionKind, actions []Action) *Action {
	a := make([]Action, len(actions)+1)
	a[0] = Action{kind: kind, after: time.Duration(len(actions))}
	copy(a[1:], actions)
	return &a[0]
}

// next reports whether r came from Next, ok whether it came from anything.
func (r *Result[D]) next() (next, ok bool) {
	if r.acts == nil {
		return false, false
	}
	return r.acts.kind == headNext, true
}

// actions returns r's actions.
func (r *Result[D]) actions() []Action {
	h := r.acts
	switch {
	case h == &keepActs:
		return unsafe.Slice((*Action)(unsafe.Pointer(unsafe.StringData(r.state))), len(r.state))
	case h == nil || h.after == 0:
		return nil
	}
	return unsafe.Slice(h, int(h.after)+1)[1:]
}

// Next moves the machine to state (which may be the current state) with
// data, then runs actions. A change of state cancels the state timeout,
// runs the new state's enter handler, and retries the postponed events.
func Next[D any](state string, data D, actions ...Action) Result[D] {
	if len(actions) > 0 {
		return nextWith(state, data, actions)
	}
	return Result[D]{data: data, state: state, acts: &nextHead} // inlined: no call
}

// Keep keeps the state, sets data, and runs actions.
func Keep[D any](data D, actions ...Action) Result[D] {
	if len(actions) > 0 {
		return keepWith(data, actions)
	}
	return Result[D]{data: data, acts: &keepHead} // inlined: no call
}

// StopWith keeps the state, sets data, runs actions (a [Reply], say), then
// stops the machine with reason ([actor.Normal] if nil).
func StopWith[D any](reason error, data D, actions ...Action) Result[D] {
	a := make([]Action, len(actions)+1)
	copy(a, actions)
	a[len(actions)] = Stop(reason)
	return Result[D]{data: data, state: unsafe.String((*byte)(unsafe.Pointer(&a[0])), len(a)), acts: &keepActs}
}

// On sets the handler for events of type E in state. An event of another
// Go type with the same [EventName] is converted to E first. On panics if
// state already has a handler for E, if E is an interface type, or once m
// is in use.
func On[D, E any](m *Machine[D], state string, h func(ev E, data D) Result[D]) {
	m.mutable()
	e := entryFor[D, E](m)
	if _, dup := e.inState[state]; dup {
		panic(fmt.Sprintf("fsm: %s %s: two handlers for %s in state %q", m.name, m.version, e.name, state))
	}
	m.addState(state)
	e.inState[state] = typed(h)
}

// OnAny sets the handler for events of type E in every state that has no
// handler of its own for E (set with [On]). It panics as On does.
func OnAny[D, E any](m *Machine[D], h func(ev E, data D) Result[D]) {
	m.mutable()
	e := entryFor[D, E](m)
	if e.anyState != nil {
		panic(fmt.Sprintf("fsm: %s %s: two any-state handlers for %s", m.name, m.version, e.name))
	}
	e.anyState = typed(h)
}

// UpgradeEvent sets how this version converts an event payload of another
// Go type that has the name of E (see [EventName]), usually E as an older
// version declared it: h gets the payload as msgpack. Without it, the
// payload is decoded into E directly, so fields of the same name carry
// over. Conversion happens to the events a machine holds (postponed,
// pending timeouts) and to those waiting in its mailbox when it changes
// code, and to an event sent after the change whose type is not E (it was
// sent for another version). It panics if set twice for E, or once m is
// in use.
func UpgradeEvent[D, E any](m *Machine[D], h func(raw msgpack.RawMessage) (E, error)) {
	m.mutable()
	e := entryFor[D, E](m)
	if e.upgrade != nil {
		panic(fmt.Sprintf("fsm: %s %s: two event upgrades for %s", m.name, m.version, e.name))
	}
	e.upgrade = func(raw msgpack.RawMessage) (any, error) { return h(raw) }
}

func typed[D, E any](h func(E, D) Result[D]) handler[D] {
	return func(p any, ip unsafe.Pointer) ([]Action, error) {
		in := (*instance[D])(ip)
		r := h(p.(E), in.data)
		if r.acts == &keepHead { // a Keep without actions: take is not inlined
			in.data = r.data
			return nil, nil
		}
		return in.apply(r, false)
	}
}

func entryFor[D, E any](m *Machine[D]) *entry[D] {
	t := reflect.TypeFor[E]()
	if t.Kind() == reflect.Interface {
		panic(fmt.Sprintf("fsm: %s %s: event type %v is an interface; use a concrete type", m.name, m.version, t))
	}
	for _, e := range m.entries {
		if e.typ == t {
			return e
		}
	}
	name := EventName(reflect.Zero(t).Interface())
	for _, e := range m.entries {
		if e.name == name {
			panic(fmt.Sprintf("fsm: %s %s: event types %v and %v have one name %q", m.name, m.version, e.typ, t, name))
		}
	}
	var zero E
	e := &entry[D]{
		typ: t, word: typeWord(zero), name: name,
		inState: make(map[string]handler[D]),
		decode:  eventDecoder[E](),
	}
	m.entries = append(m.entries, e)
	return e
}

// Enter sets the state-enter handler of state: it runs each time the
// machine enters state from another state, and when a machine starts in
// state, with the state it came from (prev is state at the start). It must
// return [Keep], or [Next] to the same state, and may not use [Postpone] or
// [NextEvent]. It panics if state has one already, or once m is in use.
func (m *Machine[D]) Enter(state string, h func(prev string, data D) Result[D]) {
	m.mutable()
	if _, dup := m.enter[state]; dup {
		panic(fmt.Sprintf("fsm: %s %s: two enter handlers for state %q", m.name, m.version, state))
	}
	m.addState(state)
	m.enter[state] = h
}

// OnUpgrade sets the UPGRADE row: h makes this version's state and data out
// of those of a machine that ran version from, the data as that version
// encoded it. Without it, the data is decoded as D and the state is kept,
// which serves versions whose data did not change. It panics once m is in
// use.
func (m *Machine[D]) OnUpgrade(h func(from, state string, data msgpack.RawMessage) (string, D, error)) {
	m.mutable()
	m.upgrade = h
}

// OnDowngrade sets the other direction of UPGRADE: h returns the state and
// data of a machine of this version as version to (older) knows them; the
// data is encoded as msgpack and Loaded by version to. Without it, the
// state and data are kept as they are. It panics once m is in use.
func (m *Machine[D]) OnDowngrade(h func(to, state string, data D) (string, any, error)) {
	m.mutable()
	m.downgrade = h
}

// InitFunc sets how a new machine gets its initial state and data from the
// ID it was started with ([WithID]), in place of those given to [Define].
// It panics once m is in use.
func (m *Machine[D]) InitFunc(f func(id string) (state string, data D)) {
	m.mutable()
	m.initFunc = f
}

// OnUnknown sets the handler of every event that no other handler takes,
// in any state; the payload is as it came. Without it, such an event is an
// ErrUnknownEvent for its caller, or a logged drop. It panics once m is in
// use.
func (m *Machine[D]) OnUnknown(h func(ev Event, data D) Result[D]) {
	m.mutable()
	m.unknown = h
}

// Snapshot returns the snapshot of a machine of this version in state with
// data: what [Info] would show, and what [FromSnapshot] starts from.
func (m *Machine[D]) Snapshot(state string, data D) (Snapshot, error) {
	b, err := encode(data)
	if err != nil {
		return Snapshot{}, fmt.Errorf("%w: %s %s: %w", ErrBadData, m.name, m.version, err)
	}
	return Snapshot{Machine: m.name, Version: m.version, State: state, Data: b}, nil
}

func (m *Machine[D]) mutable() {
	if m.frozen.Load() {
		panic(fmt.Sprintf("fsm: %s %s: handlers set after the machine was used", m.name, m.version))
	}
}

func (m *Machine[D]) addState(s string) {
	if _, ok := m.states[s]; !ok {
		m.states[s] = len(m.states)
	}
}

// table fixes the machine's table at its first use and returns it.
func (m *Machine[D]) table() *table[D] {
	m.once.Do(func() {
		m.frozen.Store(true)
		t := &m.tab
		t.states = m.states
		t.enter = make([]func(string, D) Result[D], len(m.states))
		for s, h := range m.enter {
			t.enter[m.states[s]] = h
		}
		t.entries = m.entries
		t.copy, _ = copierFor(reflect.TypeFor[D]())
		t.byName = make(map[string]*entry[D], len(m.entries))
		for _, e := range m.entries {
			e.byState = make([]handler[D], len(m.states))
			for s, h := range e.inState {
				e.byState[m.states[s]] = h
			}
			t.types = append(t.types, e.word)
			t.byName[e.name] = e
		}
		if len(m.entries) > scanTypes {
			t.byType = make(map[unsafe.Pointer]*entry[D], len(m.entries))
			for _, e := range m.entries {
				t.byType[e.word] = e
			}
		}
	})
	return &m.tab
}

// lookup returns the entry for a payload, and whether the payload is of
// the entry's own type (else it must be converted). It returns nil for an
// event this version does not know.
func (t *table[D]) lookup(p any) (*entry[D], bool) {
	typ := typeWord(p)
	if t.byType == nil {
		for i, x := range t.types {
			if x == typ {
				return t.entries[i], true
			}
		}
	} else if e, ok := t.byType[typ]; ok {
		return e, true
	}
	if len(t.byName) == 0 {
		return nil, false
	}
	return t.byName[EventName(p)], false
}

// typeWord returns the word of an interface value that names its dynamic
// type: equal for two values of one type, and cheaper to compare than
// reflect.Type values on the path every event takes.
func typeWord(v any) unsafe.Pointer {
	return (*[2]unsafe.Pointer)(unsafe.Pointer(&v))[0]
}

func (t *table[D]) index(state string) int {
	if i, ok := t.states[state]; ok {
		return i
	}
	return -1
}

// convert turns a payload of another Go type into the entry's type.
func (e *entry[D]) convert(p any) (v any, err error) {
	err = protect(func() error {
		raw, err := encode(p)
		switch {
		case err != nil:
		case e.upgrade != nil:
			// A payload's own encoder may write anything: check it
			// before the handler decodes it (decode checks for itself).
			if err = msgpackcheck.Check(raw); err == nil {
				v, err = e.upgrade(raw)
			}
		default:
			v, err = e.decode(raw)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %s (%T) to %v: %w", ErrBadEvent, e.name, p, e.typ, err)
	}
	return v, nil
}

// Code's methods.

// Machine returns the machine's name.
func (m *Machine[D]) Machine() string { return m.name }

// Version returns the version's name.
func (m *Machine[D]) Version() string { return m.version }

// New returns a new machine's instance, at the initial state.
func (m *Machine[D]) New(_ context.Context, id string) (Instance, error) {
	t := m.table()
	state, data := m.initState, m.initData
	if m.initFunc != nil {
		state, data = m.initFunc(id)
	}
	if state == "" {
		return nil, fmt.Errorf("%w: %s %s: empty initial state", ErrBadResult, m.name, m.version)
	}
	return m.instance(t, state, data), nil
}

// Load returns an instance with state and data in this version's format.
func (m *Machine[D]) Load(_ context.Context, state string, data []byte) (Instance, error) {
	t := m.table()
	var zero D
	in := m.instance(t, state, zero)
	// Into the instance's own data: decoding into a D of its own would
	// take one allocation more.
	if err := decode(data, &in.data); err != nil {
		return nil, fmt.Errorf("%w: %s %s: %w", ErrBadData, m.name, m.version, err)
	}
	if state == "" {
		return nil, fmt.Errorf("%w: %s %s: empty state", ErrBadData, m.name, m.version)
	}
	return in, nil
}

// Upgrade runs the UPGRADE row on the state and data of version from.
func (m *Machine[D]) Upgrade(ctx context.Context, from, state string, data []byte) (Instance, error) {
	if m.upgrade == nil {
		return m.Load(ctx, state, data)
	}
	if err := msgpackcheck.Check(data); err != nil {
		return nil, fmt.Errorf("%w: %s %s: upgrade from %s: %w", ErrBadData, m.name, m.version, from, err)
	}
	t := m.table()
	var d D
	err := protect(func() (err error) {
		state, d, err = m.upgrade(from, state, data)
		return err
	})
	if err != nil {
		return nil, err
	}
	if state == "" {
		return nil, fmt.Errorf("%w: %s %s: upgrade returned an empty state", ErrBadResult, m.name, m.version)
	}
	return m.instance(t, state, d), nil
}

// Downgrade runs the downgrade direction of UPGRADE toward version to.
func (m *Machine[D]) Downgrade(_ context.Context, to string, in Instance) (string, []byte, error) {
	i, ok := in.(*instance[D])
	if !ok || i.m != m {
		return "", nil, fmt.Errorf("fsm: %s %s: downgrade of an instance of other code (%T)", m.name, m.version, in)
	}
	state := i.state
	var v any = i.data
	if m.downgrade != nil {
		if err := protect(func() (err error) {
			state, v, err = m.downgrade(to, state, i.data)
			return err
		}); err != nil {
			return "", nil, err
		}
	}
	b, err := encode(v)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %s %s: %w", ErrBadData, m.name, m.version, err)
	}
	return state, b, nil
}

// ConvertEvent converts ev's payload to the type of this version's
// handler for it, if it is of another type.
func (m *Machine[D]) ConvertEvent(_ context.Context, ev Event) (Event, error) {
	e, same := m.table().lookup(ev.Payload)
	if e == nil || same {
		return ev, nil
	}
	p, err := e.convert(ev.Payload)
	if err != nil {
		return ev, err
	}
	ev.Payload = p
	return ev, nil
}

func (m *Machine[D]) instance(t *table[D], state string, data D) *instance[D] {
	return &instance[D]{m: m, t: t, state: state, idx: t.index(state), data: data}
}
