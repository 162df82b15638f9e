// Package appendbuf holds the writer that Hotline's msgpack encoders write
// into: a byte slice that grows as it is written, reused between values.
package appendbuf

// A Buffer is an io.Writer, and an io.ByteWriter so that msgpack's encoder
// writes to it directly, without a bufio.Writer of its own, that appends
// to B.
type Buffer struct{ B []byte }

// Write appends p to B; it never fails.
func (a *Buffer) Write(p []byte) (int, error) {
	a.B = append(a.B, p...)
	return len(p), nil
}

// WriteByte appends c to B; it never fails.
func (a *Buffer) WriteByte(c byte) error {
	a.B = append(a.B, c)
	return nil
}
