package appendbuf

import (
	"fmt"
	"io"
	"testing"
)

// Writes append in order, the two ways msgpack writes.
func TestBuffer(t *testing.T) {
	var b Buffer
	var w io.Writer = &b
	if _, ok := w.(io.ByteWriter); !ok {
		t.Fatal("not an io.ByteWriter: msgpack would wrap it in a bufio.Writer")
	}
	if n, err := w.Write([]byte("ab")); n != 2 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if err := b.WriteByte('c'); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "%d", 42)
	if got := string(b.B); got != "abc42" {
		t.Fatalf("B = %q, want %q", got, "abc42")
	}
	b.B = b.B[:0]
	b.WriteByte('x')
	if got := string(b.B); got != "x" {
		t.Fatalf("after a reset B = %q", got)
	}
}
