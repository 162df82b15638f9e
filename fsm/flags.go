package fsm

import (
	"fmt"
	"unsafe"
)

// Feature flags: named runtime toggles that handlers read (see package
// flags and doc/flags.md). A machine is given a FlagSource at start; the
// runtime binds it to the machine's ID and hands the view, a Flags, to
// every instance of the machine's code that takes one (FlagUser). The path
// of an event does not change: only handlers declared with OnFlags or
// OnAnyFlags read the view.

// A FlagSource is where a machine's feature flags come from; a
// *flags.Set is one. It must be safe for concurrent use: it serves many
// machines.
type FlagSource interface {
	// Flag reports whether the flag called name is on for the machine
	// with ID id; false for a flag it does not know.
	Flag(name, id string) bool

	// AppendOn appends to dst the names of every flag that is on for the
	// machine with ID id, in name order, and returns the extended slice.
	// A plugin-hosted machine sends them to its plugin with each event.
	AppendOn(dst []string, id string) []string
}

// Flags is one machine's view of its feature flags: a FlagSource and the
// machine's ID. A handler declared with [OnFlags] or [OnAnyFlags] gets it.
// The zero Flags has no source: every flag is off.
type Flags struct {
	src FlagSource
	id  string
}

// NewFlags returns the view of src for the machine with ID id. The
// runtime makes these; code that runs instances itself (a plugin server,
// a test) makes its own.
func NewFlags(src FlagSource, id string) Flags { return Flags{src: src, id: id} }

// On reports whether the flag called name is on for this machine. A
// machine started without [WithFlags] reads every flag off.
func (f Flags) On(name string) bool { return f.src != nil && f.src.Flag(name, f.id) }

// AppendOn appends the names of the flags on for this machine to dst.
func (f Flags) AppendOn(dst []string) []string {
	if f.src == nil {
		return dst
	}
	return f.src.AppendOn(dst, f.id)
}

// A FlagUser is an [Instance] whose handlers read feature flags: the
// runtime gives it its machine's Flags when it makes it (at start, at a
// change of code, when a machine is restored from an image), before its
// first handler runs. An instance of a [*Machine] is one; so is a
// plugin-hosted machine's.
type FlagUser interface {
	UseFlags(f Flags)
}

// WithFlags gives the machine a source of feature flags, which its
// flag-reading handlers ([OnFlags]) ask about the machine's ID
// ([WithID]). The default is none: every flag is off.
func WithFlags(src FlagSource) StartOption {
	return func(c *startConfig) { c.flags = src }
}

// OnFlags is [On] for a handler that reads feature flags: h gets its
// machine's Flags as a third argument. It panics as On does.
func OnFlags[D, E any](m *Machine[D], state string, h func(ev E, data D, f Flags) Result[D]) {
	m.mutable()
	e := entryFor[D, E](m)
	if _, dup := e.inState[state]; dup {
		panic(fmt.Sprintf("fsm: %s %s: two handlers for %s in state %q", m.name, m.version, e.name, state))
	}
	m.addState(state)
	e.inState[state] = flagged(h)
}

// OnAnyFlags is [OnAny] for a handler that reads feature flags. It panics
// as OnAny does.
func OnAnyFlags[D, E any](m *Machine[D], h func(ev E, data D, f Flags) Result[D]) {
	m.mutable()
	e := entryFor[D, E](m)
	if e.anyState != nil {
		panic(fmt.Sprintf("fsm: %s %s: two any-state handlers for %s", m.name, m.version, e.name))
	}
	e.anyState = flagged(h)
}

func flagged[D, E any](h func(E, D, Flags) Result[D]) handler[D] {
	return func(p any, ip unsafe.Pointer) ([]Action, error) {
		in := (*instance[D])(ip)
		var f Flags
		if in.flags != nil {
			f = *in.flags
		}
		r := h(p.(E), in.data, f)
		return in.apply(r, false)
	}
}

// UseFlags keeps f for the instance's flag-reading handlers.
func (in *instance[D]) UseFlags(f Flags) { in.flags = &f }

// bindFlags gives in the machine's flags, if it has a source and in reads
// flags.
func (c *core) bindFlags(in Instance) { bindFlags(in, c.flags, c.id) }

// bindFlags gives in the flags of src for the machine id, if there is a
// source and in reads flags.
func bindFlags(in Instance, src FlagSource, id string) {
	if src == nil {
		return
	}
	if u, ok := in.(FlagUser); ok {
		u.UseFlags(Flags{src: src, id: id})
	}
}
