// Package msgpackcheck checks msgpack bytes from outside the process before
// they are decoded: msgpack v5.4 sizes a slice by its declared length
// before it reads the elements, so a few bytes can ask for gigabytes, which
// no recover catches. Every decoder of outside bytes in Hotline (fsm's data
// and events, the handoff format) calls Check first.
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
		var skip, items int // bytes to skip; values the container holds
		var size int        // bytes of a length that follows c
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		case c >= 0x80 && c <= 0x8f:
			items = 2 * int(c&0x0f)
		case c >= 0x90 && c <= 0x9f:
			items = int(c & 0x0f)
		case c >= 0xa0 && c <= 0xbf:
			skip = int(c & 0x1f)
		case c == 0xc1:
			return bad("reserved code 0xc1", i-1)
		case c >= 0xc4 && c <= 0xc6: // bin 8, 16, 32
			size = 1 << (c - 0xc4)
		case c >= 0xc7 && c <= 0xc9: // ext 8, 16, 32: length, type, data
			size = 1 << (c - 0xc7)
			skip = 1
		case c == 0xca || c == 0xce || c == 0xd2:
			skip = 4
		case c == 0xcb || c == 0xcf || c == 0xd3:
			skip = 8
		case c == 0xcc || c == 0xd0:
			skip = 1
		case c == 0xcd || c == 0xd1:
			skip = 2
		case c >= 0xd4 && c <= 0xd8: // fixext 1 to 16, and its type
			skip = 1 + 1<<(c-0xd4)
		case c >= 0xd9 && c <= 0xdb: // str 8, 16, 32
			size = 1 << (c - 0xd9)
		case c == 0xdc || c == 0xdd: // array 16, 32
			size = 2 << (c - 0xdc)
		case c == 0xde || c == 0xdf: // map 16, 32
			size = 2 << (c - 0xde)
		}
		if size > 0 {
			if len(b)-i < size {
				return bad("unexpected end", i)
			}
			n := 0
			for _, x := range b[i : i+size] {
				n = n<<8 | int(x)
			}
			i += size
			switch {
			case c >= 0xdc && c <= 0xdd:
				items = n
			case c >= 0xde:
				items = 2 * n
			default:
				skip += n
			}
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
