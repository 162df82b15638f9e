package msgpackcheck_test

import (
	"fmt"
	"testing"

	"github.com/hotline-go/hotline/internal/msgpackcheck"
)

// TestCheckAgreesWithSwitch: Check, which looks each type byte up in a
// table, gives the error (text and position) or the success of the chain
// of comparisons it replaced (reference, below) on every input of one and
// two bytes, and on every type byte before a set of tails: lengths of each
// width, short and long, nested and cut.
func TestCheckAgreesWithSwitch(t *testing.T) {
	same := func(b []byte) {
		t.Helper()
		got, want := fmt.Sprint(msgpackcheck.Check(b)), fmt.Sprint(reference(b))
		if got != want {
			t.Fatalf("Check(%x) = %s, the switch gives %s", b, got, want)
		}
	}
	same(nil)
	for c := range 256 {
		same([]byte{byte(c)})
		for d := range 256 {
			same([]byte{byte(c), byte(d)})
		}
	}
	tails := [][]byte{
		{0x00, 0x01, 0xc0},
		{0x00, 0x02, 0x01, 0x02},
		{0x00, 0x00, 0x00, 0x02, 0x91, 0xc0},
		{0x03, 0xa1, 'k', 0x01, 0xc0, 0x92, 0x01},
		{0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},
		{0xff, 0xff, 0xff, 0xff},
		{0x7f, 0xff, 0xff, 0xff, 0x00},
	}
	for c := range 256 {
		for _, tail := range tails {
			for n := range len(tail) + 1 {
				same(append([]byte{byte(c)}, tail[:n]...))
				same(append([]byte{0x92, byte(c)}, tail[:n]...))
			}
		}
	}
}

// reference is Check as a chain of comparisons, before the table.
func reference(b []byte) error {
	bad := func(what string, at int) error { return fmt.Errorf("msgpack: %s at byte %d", what, at) }
	// need[len(need)-1] is the number of values the innermost open array
	// or map still holds; the outermost level holds the one value.
	need := []int{1}
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
			var n int64 // wide enough for 2 × a 4-byte length, where int is 32 bits
			for _, x := range b[i : i+size] {
				n = n<<8 | int64(x)
			}
			i += size
			var need int64
			switch {
			case c >= 0xdc && c <= 0xdd:
				need = n
			case c >= 0xde:
				need = 2 * n
			default:
				need = int64(skip) + n
			}
			if need > int64(len(b)-i) {
				return bad("length beyond the input", i)
			}
			if c >= 0xdc {
				items = int(need)
			} else {
				skip = int(need)
			}
		}
		if skip > len(b)-i || items > len(b)-i {
			return bad("length beyond the input", i)
		}
		i += skip
		if items > 0 {
			if len(need) > msgpackcheck.MaxDepth {
				return bad("nesting too deep", i)
			}
			need = append(need, items)
		}
	}
	if i != len(b) {
		return msgpackcheck.ErrTrailing
	}
	return nil
}
