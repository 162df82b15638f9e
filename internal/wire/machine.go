package wire

import (
	"math"
	"time"
)

// The message types of the bodies of plugin-hosted machines' calls: the
// Body of a [Request] and of its [Response] (StatusOK) when the call is one
// of a machine's (Request.Method is one of the Method constants).
const (
	TypeMachineCall   Type = 6
	TypeMachineResult Type = 7
)

// The methods of a plugin that serves machine code (package plugin).
const (
	MethodNew       = "fsm.new"       // Arg: the machine's ID
	MethodLoad      = "fsm.load"      // State, Data
	MethodUpgrade   = "fsm.upgrade"   // Arg: the version from; State, Data of that version
	MethodDowngrade = "fsm.downgrade" // Arg: the version to; State, Data of Version
	MethodHandle    = "fsm.handle"    // State, Data, Kind, Event, Payload, Flags
	MethodEnter     = "fsm.enter"     // Arg: the previous state; State, Data
)

// MachineCall is the body of a request to a plugin-hosted machine's code.
// The plugin keeps nothing between calls: a call carries the machine's
// state and data (msgpack, in Version's format), and the result the new
// ones.
type MachineCall struct {
	Version string // the version of the code to run
	State   string
	Data    []byte // msgpack
	Arg     string // per method: an ID, a version, a previous state
	Kind    uint8  // the event's fsm.Kind
	Event   string // the event's name (fsm.EventName)
	Payload []byte // the event's payload, msgpack

	// Flags are the names of the feature flags that are on for the
	// machine (fsm.handle only), as the host evaluated them for this
	// event; a flag not named is off. Since ProtocolVersion 2.
	Flags []string
}

// Append appends the msgpack of c to b.
func (c *MachineCall) Append(b []byte) []byte {
	b = appendArrayLen(b, 9)
	b = appendUint(b, uint64(TypeMachineCall))
	b = appendStr(b, c.Version)
	b = appendStr(b, c.State)
	b = appendBin(b, c.Data)
	b = appendStr(b, c.Arg)
	b = appendUint(b, uint64(c.Kind))
	b = appendStr(b, c.Event)
	b = appendBin(b, c.Payload)
	b = appendArrayLen(b, len(c.Flags))
	for _, f := range c.Flags {
		b = appendStr(b, f)
	}
	return b
}

// Decode sets c from the msgpack in b. Data and Payload alias b.
func (c *MachineCall) Decode(b []byte) error { return c.DecodeWith(b, nil) }

// DecodeWith is Decode, with the strings interned in strs (if not nil).
func (c *MachineCall) DecodeWith(b []byte, strs *Strings) error {
	d := decoder{b: b, msg: "MachineCall", strs: strs}
	d.header(TypeMachineCall, 9)
	c.Version = d.str("version")
	c.State = d.str("state")
	c.Data = d.raw("data")
	c.Arg = d.str("arg")
	c.Kind = d.uint8("kind")
	c.Event = d.str("event")
	c.Payload = d.raw("payload")
	n := d.arrayLen("flags")
	if n > uint64(len(b)) { // each element takes at least one byte
		d.fail("flags", "%d elements in %d bytes", n, len(b))
	}
	c.Flags = nil
	if d.err == nil && n > 0 {
		c.Flags = make([]string, n)
		for i := range c.Flags {
			c.Flags[i] = d.str("flags")
		}
	}
	if d.err != nil {
		c.Flags = nil
	}
	return d.end()
}

// Fail says why a machine call failed; the host maps it to fsm's errors.
type Fail uint8

// The failures of a [MachineResult].
const (
	FailNone         Fail = 0
	FailUnknownEvent Fail = 1 // fsm.ErrUnknownEvent
	FailBadEvent     Fail = 2 // fsm.ErrBadEvent
	FailBadResult    Fail = 3 // fsm.ErrBadResult
	FailBadData      Fail = 4 // fsm.ErrBadData
	FailOther        Fail = 5 // any other error: the machine stops
)

// MachineAction is one fsm.Action: its kind (fsm.ActionKind), a timeout's
// name and delay, the name of the event it carries (fsm.EventName of the
// payload of a next event or a timeout), and its value as msgpack (a
// reply, an event payload, or for a reply error and a stop reason the
// error's text as a str, nil for a normal stop).
type MachineAction struct {
	Kind  uint8
	Name  string
	After time.Duration // never negative
	Event string
	Value []byte
}

// MachineResult is the body of the answer to a [MachineCall].
type MachineResult struct {
	State   string
	Data    []byte // msgpack, in the format of the call's version (for fsm.downgrade: of Arg)
	Fail    Fail
	Message string // the error's text when Fail is not FailNone
	Actions []MachineAction
}

// Append appends the msgpack of r to b.
func (r *MachineResult) Append(b []byte) []byte {
	b = appendArrayLen(b, 6)
	b = appendUint(b, uint64(TypeMachineResult))
	b = appendStr(b, r.State)
	b = appendBin(b, r.Data)
	b = appendUint(b, uint64(r.Fail))
	b = appendStr(b, r.Message)
	b = appendArrayLen(b, len(r.Actions))
	for i := range r.Actions {
		a := &r.Actions[i]
		b = appendArrayLen(b, 5)
		b = appendUint(b, uint64(a.Kind))
		b = appendStr(b, a.Name)
		b = appendUint(b, uint64(max(a.After, 0)))
		b = appendStr(b, a.Event)
		b = appendBin(b, a.Value)
	}
	return b
}

// Decode sets r from the msgpack in b. Data and the actions' values alias b.
func (r *MachineResult) Decode(b []byte) error { return r.DecodeWith(b, nil) }

// DecodeWith is Decode, with the strings interned in strs (if not nil).
func (r *MachineResult) DecodeWith(b []byte, strs *Strings) error {
	d := decoder{b: b, msg: "MachineResult", strs: strs}
	d.header(TypeMachineResult, 6)
	r.State = d.str("state")
	r.Data = d.raw("data")
	f := d.uint("fail")
	if d.err == nil && f > uint64(FailOther) {
		d.fail("fail", "unknown failure %d", f)
	}
	r.Fail = Fail(f)
	r.Message = d.str("message")
	n := d.arrayLen("actions")
	if n > uint64(len(b)) { // each takes at least six bytes
		d.fail("actions", "%d actions in %d bytes", n, len(b))
	}
	r.Actions = nil
	if d.err == nil && n > 0 {
		r.Actions = make([]MachineAction, n)
	}
	for i := range r.Actions {
		if d.err != nil {
			break
		}
		a := &r.Actions[i]
		if m := d.arrayLen("action"); d.err == nil && m != 5 {
			d.fail("action", "want an array of 5, have %d", m)
		}
		a.Kind = d.uint8("action kind")
		a.Name = d.str("action name")
		t := d.uint("action after")
		if t > math.MaxInt64 {
			d.fail("action after", "%d overflows a duration", t)
		}
		a.After = time.Duration(t)
		a.Event = d.str("action event")
		a.Value = d.raw("action value")
	}
	if d.err != nil {
		r.Actions = nil
	}
	return d.end()
}

func (d *decoder) uint8(field string) uint8 {
	v := d.uint(field)
	if d.err == nil && v > math.MaxUint8 {
		d.fail(field, "%d is out of range", v)
		return 0
	}
	return uint8(v)
}
