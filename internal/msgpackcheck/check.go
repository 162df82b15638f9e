// Package msgpackcheck checks msgpack bytes from outside the process before
// they are decoded: msgpack v5.4 sizes a slice by its declared length
// before it reads the elements, so a few bytes can ask for gigabytes, which
// no recover catches. Every decoder of outside bytes in Hotline (fsm's data
// and events, the handoff format) calls Check first. Value decodes checked
// bytes into a value to compare with another, which is how Hotline compares
// data across versions (msgpack's bytes for equal values may differ).
package msgpackcheck

import (
	"errors"
	"fmt"
)

// ErrTrailing is returned by Check when bytes follow the value.
var ErrTrailing = errors.New("msgpack: trailing bytes after the value")

// MaxDepth bounds the nesting of arrays and maps in data that this package
// decodes: deeper input is refused rather than risk the decoder's stack.
const MaxDepth = 256

// Check reports whether b holds exactly one well-formed msgpack value whose
// arrays, maps, strings and binaries hold as many elements as they declare,
// nested at most MaxDepth deep. Decoding bytes that pass allocates in
// proportion to their length: msgpack v5.4 sizes a slice by its declared
// length before it reads the elements (a 5-byte array header can ask for
// tens of gigabytes, which no recover can catch), so every byte string
// from outside the process passes here first.
func Check(b []byte) error {
	bad := func(what string, at int) error { return fmt.Errorf("msgpack: %s at byte %d", what, at) }
	// need[len(need)-1] is the number of values the innermost open array
	// or map still holds; the outermost level holds the one value. The
	// first levels live on the stack: most data nests a few levels deep,
	// and Check then allocates nothing.
	var levels [16]int
	need := append(levels[:0], 1)
	i := 0
	for len(need) > 0 {
		if need[len(need)-1] == 0 {
			need = need[:len(need)-1]
			continue
		}
		need[len(need)-1]--
		if i >= len(b) {
			return bad("unexpected end", i)
		}
		c := b[i]
		i++
		d := codes[c]
		skip, items := int(d.skip), int(d.items)
		if d.length > 0 {
			size := int(d.length)
			if len(b)-i < size {
				return bad("unexpected end", i)
			}
			var n uint64 // a 4-byte length overflows a 32-bit int
			for _, x := range b[i : i+size] {
				n = n<<8 | uint64(x)
			}
			i += size
			// Each item takes a byte at least, and each pair two: a length
			// the rest of the input cannot hold is refused before it is an
			// int, so that what follows fits one.
			rest := uint64(len(b) - i)
			switch d.counts {
			case countsItems:
				if n > rest {
					return bad("length beyond the input", i)
				}
				items = int(n)
			case countsPairs:
				if n > rest/2 {
					return bad("length beyond the input", i)
				}
				items = 2 * int(n)
			default:
				if n > rest {
					return bad("length beyond the input", i)
				}
				skip += int(n)
			}
		} else if d.counts == countsBad {
			return bad("reserved code 0xc1", i-1)
		}
		if skip > len(b)-i || items > len(b)-i {
			return bad("length beyond the input", i)
		}
		i += skip
		if items > 0 {
			if len(need) > MaxDepth {
				return bad("nesting too deep", i)
			}
			need = append(need, items)
		}
	}
	if i != len(b) {
		return ErrTrailing
	}
	return nil
}

// A code describes what follows a msgpack type byte.
type code struct {
	skip   uint8 // bytes that follow, besides a length's and what it counts
	items  uint8 // values a fixed map or array holds
	length uint8 // bytes of a length that follows
	counts uint8 // what that length counts
}

// What a length counts.
const (
	countsBytes = iota
	countsItems // an array's values
	countsPairs // a map's keys and values
	countsBad   // the reserved code 0xc1
)

// codes describes every type byte, for Check: a table lookup is cheaper
// than a chain of comparisons on each value. Read-only after init.
var codes = func() (t [256]code) {
	for c := range 256 {
		d := &t[c]
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		case c >= 0x80 && c <= 0x8f:
			d.items = uint8(2 * (c & 0x0f))
		case c >= 0x90 && c <= 0x9f:
			d.items = uint8(c & 0x0f)
		case c >= 0xa0 && c <= 0xbf:
			d.skip = uint8(c & 0x1f)
		case c == 0xc1:
			d.counts = countsBad
		case c >= 0xc4 && c <= 0xc6: // bin 8, 16, 32
			d.length = 1 << (c - 0xc4)
		case c >= 0xc7 && c <= 0xc9: // ext 8, 16, 32: length, type, data
			d.length = 1 << (c - 0xc7)
			d.skip = 1
		case c == 0xca || c == 0xce || c == 0xd2:
			d.skip = 4
		case c == 0xcb || c == 0xcf || c == 0xd3:
			d.skip = 8
		case c == 0xcc || c == 0xd0:
			d.skip = 1
		case c == 0xcd || c == 0xd1:
			d.skip = 2
		case c >= 0xd4 && c <= 0xd8: // fixext 1 to 16, and its type
			d.skip = 1 + 1<<(c-0xd4)
		case c >= 0xd9 && c <= 0xdb: // str 8, 16, 32
			d.length = 1 << (c - 0xd9)
		case c == 0xdc || c == 0xdd: // array 16, 32
			d.length = 2 << (c - 0xdc)
			d.counts = countsItems
		case c == 0xde || c == 0xdf: // map 16, 32
			d.length = 2 << (c - 0xde)
			d.counts = countsPairs
		}
	}
	return t
}()
