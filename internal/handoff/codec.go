package handoff

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// The body of a State frame is msgpack, written and read here by hand: the
// reflection-based encoder took 30 ms and the decoder 90 to 120 ms for the
// 10,000 machines of BenchmarkHandoff, most of the pause. The bytes are
// those msgpack's encoder writes for these types (structs as arrays,
// strings as fixstr/str8/str16/str32, byte slices as bin, nil slices and
// maps as nil, uint8 as 0xcc, int64 as 0xd3, map keys sorted):
// TestEncodeMatchesMsgpack checks it on random States.

func appendArrayLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xdc), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(n))
	}
}

func appendMapLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x80|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xde), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, 0xdf), uint32(n))
	}
}

func appendString(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
	return append(b, s...)
}

func appendBin(b []byte, p []byte) []byte {
	n := len(p)
	switch {
	case p == nil:
		return append(b, 0xc0)
	case n <= math.MaxUint8:
		b = append(b, 0xc4, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xc5), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xc6), uint32(n))
	}
	return append(b, p...)
}

// appendSliceLen writes the length of a slice, or nil for a nil one; it
// reports whether elements follow.
func appendSliceLen[T any](b []byte, s []T) ([]byte, bool) {
	if s == nil {
		return append(b, 0xc0), false
	}
	return appendArrayLen(b, len(s)), true
}

func appendEvent(b []byte, e *Event) []byte {
	b = append(b, 0x93, 0xcc, e.Kind)
	b = appendString(b, e.Name)
	return appendBin(b, e.Payload)
}

func appendEvents(b []byte, es []Event) []byte {
	b, _ = appendSliceLen(b, es)
	for i := range es {
		b = appendEvent(b, &es[i])
	}
	return b
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xc3)
	}
	return append(b, 0xc2)
}

func appendInt64(b []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(v))
}

func appendMachine(b []byte, m *Machine, v uint16) []byte {
	b = append(b, 0x9a)
	b = appendString(b, m.Key)
	b = appendString(b, m.Machine)
	b = appendString(b, m.Version)
	b = appendString(b, m.ID)
	if m.Tags == nil {
		b = append(b, 0xc0)
	} else {
		b = appendMapLen(b, len(m.Tags))
		keys := make([]string, 0, len(m.Tags))
		for k := range m.Tags {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b = appendString(appendString(b, k), m.Tags[k])
		}
	}
	b = appendString(b, m.State)
	b = appendBin(b, m.Data)
	b, _ = appendSliceLen(b, m.Timeouts)
	for i := range m.Timeouts {
		t := &m.Timeouts[i]
		if v < 3 {
			b = append(b, 0x94, 0xcc, t.Kind)
		} else {
			b = append(b, 0x95, 0xcc, t.Kind)
		}
		b = appendString(b, t.Name)
		b = appendInt64(b, t.Remaining)
		b = appendEvent(b, &t.Event)
		if v >= 3 {
			b = appendInt64(b, t.Fired)
		}
	}
	b = appendEvents(b, m.Postponed)
	return appendEvents(b, m.Queued)
}

func appendConn(b []byte, c *Conn) []byte {
	b = append(b, 0x94)
	b = appendString(b, c.Key)
	b = appendString(b, c.Owner)
	b = appendBin(b, c.Unread)
	return appendBin(b, c.Meta)
}

// size is a close upper estimate of the encoded size of s, to allocate
// once.
func size(s *State) int {
	n := 16
	str := func(v string) { n += 5 + len(v) }
	ev := func(e *Event) { n += 3; str(e.Name); n += 5 + len(e.Payload) }
	for i := range s.Machines {
		m := &s.Machines[i]
		n += 1 + 5*3
		str(m.Key)
		str(m.Machine)
		str(m.Version)
		str(m.ID)
		str(m.State)
		n += 5 + len(m.Data)
		for k, v := range m.Tags {
			str(k)
			str(v)
		}
		for j := range m.Timeouts {
			n += 21
			str(m.Timeouts[j].Name)
			ev(&m.Timeouts[j].Event)
		}
		for j := range m.Postponed {
			ev(&m.Postponed[j])
		}
		for j := range m.Queued {
			ev(&m.Queued[j])
		}
	}
	for i := range s.Conns {
		c := &s.Conns[i]
		n += 1 + 2*5 + len(c.Unread) + len(c.Meta)
		str(c.Key)
		str(c.Owner)
	}
	for i := range s.Releases {
		rl := &s.Releases[i]
		n += 1 + 5
		str(rl.Machine)
		str(rl.Current)
		str(rl.Permanent)
		for _, h := range rl.History {
			str(h)
		}
	}
	n += 9 + 5
	for i := range s.Flags {
		f := &s.Flags[i]
		n += 1 + 9 + 1
		str(f.Flag)
		str(f.Value)
		str(f.Old)
		str(f.Who)
	}
	return n
}

func appendFlag(b []byte, f *Flag) []byte {
	b = append(b, 0x96)
	b = appendString(b, f.Flag)
	b = appendString(b, f.Value)
	b = appendString(b, f.Old)
	b = appendString(b, f.Who)
	b = appendInt64(b, f.When)
	return appendBool(b, f.File)
}

func appendRelease(b []byte, r *Release) []byte {
	b = append(b, 0x94)
	b = appendString(b, r.Machine)
	b = appendString(b, r.Current)
	b = appendString(b, r.Permanent)
	b, _ = appendSliceLen(b, r.History)
	for _, h := range r.History {
		b = appendString(b, h)
	}
	return b
}

// stateFields is the number of a State's fields in format v.
func stateFields(v uint16) int {
	switch v {
	case 1:
		return 2
	case 2:
		return 3
	}
	return 5
}

// appendState writes s in format v (1 to 3: checked by the caller).
func appendState(b []byte, s *State, v uint16) []byte {
	b = appendArrayLen(b, stateFields(v))
	b, _ = appendSliceLen(b, s.Machines)
	for i := range s.Machines {
		b = appendMachine(b, &s.Machines[i], v)
	}
	b, _ = appendSliceLen(b, s.Conns)
	for i := range s.Conns {
		b = appendConn(b, &s.Conns[i])
	}
	if v == 1 {
		return b
	}
	b, _ = appendSliceLen(b, s.Releases)
	for i := range s.Releases {
		b = appendRelease(b, &s.Releases[i])
	}
	if v == 2 {
		return b
	}
	b = appendInt64(b, s.Captured)
	b, _ = appendSliceLen(b, s.Flags)
	for i := range s.Flags {
		b = appendFlag(b, &s.Flags[i])
	}
	return b
}

// A reader decodes a body. Every length is checked against the bytes
// left, so that nothing allocates more than the body's size; the first
// error sticks, and every read after it returns zero values.
type reader struct {
	b     []byte
	total int // the body's length
	at    int // where the error was found
	err   error

	// Strings that repeat across machines (their machine, version, state,
	// event names), allocated once.
	common map[string]string
}

var errShort = errors.New("unexpected end of body")

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err, r.at = err, r.total-len(r.b)
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if len(r.b) < 1 {
		r.fail(errShort)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) n(k int) []byte {
	if len(r.b) < k {
		r.fail(errShort)
		return nil
	}
	p := r.b[:k:k]
	r.b = r.b[k:]
	return p
}

func (r *reader) uint(k int) uint64 {
	p := r.n(k)
	var v uint64
	for _, c := range p {
		v = v<<8 | uint64(c)
	}
	return v
}

// nil reads a nil if one is next.
func (r *reader) nil() bool {
	if r.err == nil && len(r.b) > 0 && r.b[0] == 0xc0 {
		r.b = r.b[1:]
		return true
	}
	return false
}

// length reads a header of kind ("array", "map") and returns its count,
// which must be possible with the bytes left, at minimum bytes an element.
func (r *reader) length(kind string, minimum int) int {
	c := r.byte()
	var n uint64
	switch {
	case kind == "array" && c&0xf0 == 0x90, kind == "map" && c&0xf0 == 0x80:
		n = uint64(c & 0x0f)
	case kind == "array" && c == 0xdc, kind == "map" && c == 0xde:
		n = r.uint(2)
	case kind == "array" && c == 0xdd, kind == "map" && c == 0xdf:
		n = r.uint(4)
	default:
		if r.err == nil {
			r.fail(fmt.Errorf("%#x where an %s was expected", c, kind))
		}
		return 0
	}
	if n*uint64(minimum) > uint64(len(r.b)) {
		r.fail(fmt.Errorf("%s of %d elements in %d bytes", kind, n, len(r.b)))
		return 0
	}
	return int(n)
}

// array reads an array header of exactly n elements (a struct).
func (r *reader) array(n int) {
	if got := r.length("array", 1); got != n && r.err == nil {
		r.fail(fmt.Errorf("array of %d fields where %d were expected", got, n))
	}
}

// raw reads a string or bin (either, as msgpack's decoder accepts) and
// returns its bytes, aliasing the body.
func (r *reader) raw(what string) []byte {
	c := r.byte()
	var n uint64
	switch {
	case c&0xe0 == 0xa0:
		n = uint64(c & 0x1f)
	case c == 0xd9 || c == 0xc4:
		n = r.uint(1)
	case c == 0xda || c == 0xc5:
		n = r.uint(2)
	case c == 0xdb || c == 0xc6:
		n = r.uint(4)
	default:
		if r.err == nil {
			r.fail(fmt.Errorf("%#x where %s was expected", c, what))
		}
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail(errShort)
		return nil
	}
	return r.n(int(n))
}

func (r *reader) string() string {
	if r.nil() {
		return ""
	}
	return string(r.raw("a string"))
}

// name reads a string that many machines share.
func (r *reader) name() string {
	if r.nil() {
		return ""
	}
	p := r.raw("a string")
	if v, ok := r.common[string(p)]; ok {
		return v
	}
	v := string(p)
	if r.common == nil {
		r.common = make(map[string]string)
	}
	if len(r.common) < 1024 {
		r.common[v] = v
	}
	return v
}

// bin returns a copy of a bin (nil for nil), so that the State does not
// keep the body alive.
func (r *reader) bin() []byte {
	if r.nil() {
		return nil
	}
	p := r.raw("bytes")
	if r.err != nil {
		return nil
	}
	return append(make([]byte, 0, len(p)), p...)
}

// int reads any msgpack integer within [lo, hi].
func (r *reader) int(lo, hi int64) int64 {
	c := r.byte()
	var v int64
	switch {
	case c <= 0x7f:
		v = int64(c)
	case c >= 0xe0:
		v = int64(int8(c))
	case c == 0xcc, c == 0xcd, c == 0xce:
		v = int64(r.uint(1 << (c - 0xcc)))
	case c == 0xcf:
		u := r.uint(8)
		if u > math.MaxInt64 {
			r.fail(fmt.Errorf("integer %d out of range", u))
			return 0
		}
		v = int64(u)
	case c == 0xd0:
		v = int64(int8(r.uint(1)))
	case c == 0xd1:
		v = int64(int16(r.uint(2)))
	case c == 0xd2:
		v = int64(int32(r.uint(4)))
	case c == 0xd3:
		v = int64(r.uint(8))
	default:
		if r.err == nil {
			r.fail(fmt.Errorf("%#x where an integer was expected", c))
		}
		return 0
	}
	if v < lo || v > hi {
		r.fail(fmt.Errorf("integer %d out of range", v))
		return 0
	}
	return v
}

// bool reads a msgpack boolean.
func (r *reader) bool() bool {
	switch c := r.byte(); c {
	case 0xc2:
		return false
	case 0xc3:
		return true
	default:
		if r.err == nil {
			r.fail(fmt.Errorf("%#x where a boolean was expected", c))
		}
		return false
	}
}

func (r *reader) event() Event {
	r.array(3)
	return Event{Kind: uint8(r.int(0, math.MaxUint8)), Name: r.name(), Payload: r.bin()}
}

func (r *reader) events() []Event {
	if r.nil() {
		return nil
	}
	n := r.length("array", 4)
	es := make([]Event, n)
	for i := range es {
		es[i] = r.event()
	}
	return es
}

func (r *reader) machine(fields int) Machine {
	r.array(10)
	var m Machine
	m.Key, m.Machine, m.Version, m.ID = r.string(), r.name(), r.name(), r.string()
	if !r.nil() {
		n := r.length("map", 2)
		m.Tags = make(map[string]string, n)
		for range n {
			k := r.name()
			m.Tags[k] = r.name()
		}
	}
	m.State, m.Data = r.name(), r.bin()
	if !r.nil() {
		m.Timeouts = make([]Timeout, r.length("array", 8))
		for i := range m.Timeouts {
			if fields < 5 {
				r.array(4)
			} else {
				r.array(5)
			}
			t := &m.Timeouts[i]
			t.Kind = uint8(r.int(0, math.MaxUint8))
			t.Name = r.name()
			t.Remaining = r.int(math.MinInt64, math.MaxInt64)
			t.Event = r.event()
			if fields >= 5 {
				t.Fired = r.int(0, math.MaxInt64)
			}
		}
	}
	m.Postponed, m.Queued = r.events(), r.events()
	for _, t := range m.Timeouts {
		if t.Fired > int64(len(m.Queued))+1 && r.err == nil {
			r.fail(fmt.Errorf("timeout %q fired behind %d queued events of %d", t.Name, t.Fired-1, len(m.Queued)))
		}
	}
	return m
}

func (r *reader) state() State {
	var s State
	fields := r.length("array", 1) // 2 in format 1, 3 in format 2, 5 in format 3: Decode checked
	if r.err == nil && fields != 2 && fields != 3 && fields != 5 {
		r.fail(fmt.Errorf("a state of %d fields", fields))
	}
	if !r.nil() {
		s.Machines = make([]Machine, r.length("array", 11))
		for i := range s.Machines {
			s.Machines[i] = r.machine(fields)
		}
	}
	if !r.nil() {
		s.Conns = make([]Conn, r.length("array", 5))
		for i := range s.Conns {
			r.array(4)
			c := &s.Conns[i]
			c.Key, c.Owner, c.Unread, c.Meta = r.string(), r.string(), r.bin(), r.bin()
		}
	}
	if fields >= 3 && !r.nil() {
		s.Releases = make([]Release, r.length("array", 5))
		for i := range s.Releases {
			r.array(4)
			rl := &s.Releases[i]
			rl.Machine, rl.Current, rl.Permanent = r.string(), r.string(), r.string()
			if !r.nil() {
				rl.History = make([]string, r.length("array", 1))
				for j := range rl.History {
					rl.History[j] = r.string()
				}
			}
		}
	}
	if fields < 5 {
		return s
	}
	s.Captured = r.int(math.MinInt64, math.MaxInt64)
	if !r.nil() {
		s.Flags = make([]Flag, r.length("array", 7))
		for i := range s.Flags {
			r.array(6)
			f := &s.Flags[i]
			f.Flag, f.Value, f.Old, f.Who = r.string(), r.name(), r.name(), r.name()
			f.When = r.int(math.MinInt64, math.MaxInt64)
			f.File = r.bool()
		}
	}
	return s
}
