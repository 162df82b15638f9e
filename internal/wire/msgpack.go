package wire

import (
	"encoding/binary"
	"fmt"
	"math"
)

// The subset of msgpack that the messages use. Encoders write the shortest
// form; the decoder accepts every form of the types it expects.

const (
	mpNil     = 0xc0
	mpBin8    = 0xc4
	mpBin16   = 0xc5
	mpBin32   = 0xc6
	mpUint8   = 0xcc
	mpUint16  = 0xcd
	mpUint32  = 0xce
	mpUint64  = 0xcf
	mpInt8    = 0xd0
	mpInt16   = 0xd1
	mpInt32   = 0xd2
	mpInt64   = 0xd3
	mpStr8    = 0xd9
	mpStr16   = 0xda
	mpStr32   = 0xdb
	mpArray16 = 0xdc
	mpArray32 = 0xdd
)

func appendUint(b []byte, v uint64) []byte {
	switch {
	case v <= 0x7f:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, mpUint8, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, mpUint16), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, mpUint32), uint32(v))
	default:
		return binary.BigEndian.AppendUint64(append(b, mpUint64), v)
	}
}

func appendArrayLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, mpArray16), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, mpArray32), uint32(n))
	}
}

func appendStr(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, mpStr8, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, mpStr16), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, mpStr32), uint32(n))
	}
	return append(b, s...)
}

func appendBin(b []byte, p []byte) []byte {
	n := len(p)
	switch {
	case n <= math.MaxUint8:
		b = append(b, mpBin8, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, mpBin16), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, mpBin32), uint32(n))
	}
	return append(b, p...)
}

// decoder reads msgpack values from a byte slice. The first error sticks:
// later reads return zero values, and err says what went wrong first.
type decoder struct {
	b    []byte
	off  int
	msg  string // the message being decoded, for errors
	err  error
	strs *Strings // if not nil, interns the strings decoded
}

func (d *decoder) fail(field, format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s: %s at offset %d: %s", ErrMalformed, d.msg, field, d.off, fmt.Sprintf(format, args...))
	}
}

// take returns the next n bytes, or nil with an error if there are fewer.
func (d *decoder) take(field string, n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)-d.off) {
		d.fail(field, "%d bytes needed, %d left", n, len(d.b)-d.off)
		return nil
	}
	p := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return p
}

func (d *decoder) byte1(field string) (byte, bool) {
	p := d.take(field, 1)
	if p == nil {
		return 0, false
	}
	return p[0], true
}

// length reads the big-endian length of size bytes that follows a tag.
func (d *decoder) length(field string, size int) uint64 {
	p := d.take(field, uint64(size))
	switch size {
	case 1:
		if p != nil {
			return uint64(p[0])
		}
	case 2:
		if p != nil {
			return uint64(binary.BigEndian.Uint16(p))
		}
	case 4:
		if p != nil {
			return uint64(binary.BigEndian.Uint32(p))
		}
	case 8:
		if p != nil {
			return binary.BigEndian.Uint64(p)
		}
	}
	return 0
}

// uint reads an unsigned integer in any msgpack integer form; a negative
// one is refused.
func (d *decoder) uint(field string) uint64 {
	tag, ok := d.byte1(field)
	if !ok {
		return 0
	}
	switch {
	case tag <= 0x7f:
		return uint64(tag)
	case tag == mpUint8:
		return d.length(field, 1)
	case tag == mpUint16:
		return d.length(field, 2)
	case tag == mpUint32:
		return d.length(field, 4)
	case tag == mpUint64:
		return d.length(field, 8)
	case tag >= mpInt8 && tag <= mpInt64:
		size := 1 << (tag - mpInt8)
		v := d.length(field, size)
		if v>>(uint(size)*8-1) != 0 {
			d.fail(field, "negative integer")
			return 0
		}
		return v
	}
	d.off--
	d.fail(field, "want an unsigned integer, have tag 0x%02x", tag)
	return 0
}

func (d *decoder) arrayLen(field string) uint64 {
	tag, ok := d.byte1(field)
	if !ok {
		return 0
	}
	switch {
	case tag&0xf0 == 0x90:
		return uint64(tag & 0x0f)
	case tag == mpArray16:
		return d.length(field, 2)
	case tag == mpArray32:
		return d.length(field, 4)
	}
	d.off--
	d.fail(field, "want an array, have tag 0x%02x", tag)
	return 0
}

// raw reads a str or a bin (or nil) and returns its bytes, aliasing d.b.
func (d *decoder) raw(field string) []byte {
	tag, ok := d.byte1(field)
	if !ok {
		return nil
	}
	var n uint64
	switch {
	case tag&0xe0 == 0xa0:
		n = uint64(tag & 0x1f)
	case tag == mpStr8, tag == mpBin8:
		n = d.length(field, 1)
	case tag == mpStr16, tag == mpBin16:
		n = d.length(field, 2)
	case tag == mpStr32, tag == mpBin32:
		n = d.length(field, 4)
	case tag == mpNil:
		return nil
	default:
		d.off--
		d.fail(field, "want a str or bin, have tag 0x%02x", tag)
		return nil
	}
	if p := d.take(field, n); len(p) > 0 {
		return p
	}
	return nil
}

func (d *decoder) str(field string) string {
	b := d.raw(field)
	if d.strs != nil {
		return d.strs.get(b)
	}
	return string(b)
}

// Strings interns the strings that recur from one message to the next (a
// machine's key, a method, a version, a state, an event's name): a decoder
// given one returns the string it holds for the same bytes instead of
// allocating a new one. It holds at most maxStrings strings of at most
// maxStringLen bytes; others are allocated as without it. The zero value
// is ready to use. A Strings is not safe for concurrent use.
type Strings struct{ m map[string]string }

const (
	maxStrings   = 4096
	maxStringLen = 64
)

func (s *Strings) get(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if v, ok := s.m[string(b)]; ok { // the conversion does not allocate
		return v
	}
	v := string(b)
	if len(b) <= maxStringLen && len(s.m) < maxStrings {
		if s.m == nil {
			s.m = make(map[string]string)
		}
		s.m[v] = v
	}
	return v
}

// header checks the array header and the type tag of a message.
func (d *decoder) header(t Type, fields int) {
	if n := d.arrayLen("header"); d.err == nil && n != uint64(fields) {
		d.fail("header", "want an array of %d, have %d", fields, n)
	}
	start := d.off
	if got := d.uint("type"); d.err == nil && got != uint64(t) {
		d.off = start
		d.fail("type", "want %v (%d), have %d", t, t, got)
	}
}

// end checks that the message used all of its bytes.
func (d *decoder) end() error {
	if d.err == nil && d.off != len(d.b) {
		d.fail("end", "%d trailing bytes", len(d.b)-d.off)
	}
	return d.err
}
