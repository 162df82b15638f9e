package msgpackcheck

import (
	"fmt"
	"strings"
	"testing"
)

// Lengths of four bytes that no input can hold, up to 2^32-1: an error,
// never a wrap-around (where int is 32 bits, 0x80000000 and above are
// negative as an int, which once let Check step backwards).
func TestHugeLengths(t *testing.T) {
	for _, c := range []byte{0xc6, 0xc9, 0xdb, 0xdd, 0xdf} { // bin32, ext32, str32, array32, map32
		for _, n := range []uint32{0x7fffffff, 0x80000000, 0xfffffff0, 0xffffffff} {
			b := []byte{c, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n), 0, 1, 2}
			err := Check(b)
			if err == nil || !strings.Contains(err.Error(), "beyond the input") {
				t.Errorf("%s: got %v, want a length beyond the input", fmt.Sprintf("% x", b), err)
			}
		}
	}
}
