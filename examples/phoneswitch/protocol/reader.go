package protocol

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// A Reader reads lines of at most [MaxLine] bytes. It is not safe for
// concurrent use; the zero value is not usable (use [NewReader]).
type Reader struct {
	br      *bufio.Reader
	prefix  *bytes.Reader // bytes to read before the underlying reader's
	partial []byte        // the start of a line cut by an error (a deadline)
}

// NewReader returns a Reader of r, buffering at most [MaxLine] bytes.
func NewReader(r io.Reader) *Reader {
	return NewReaderAfter(nil, r)
}

// NewReaderAfter returns a Reader that reads unread first, then r: the
// bytes another Reader had read from the same connection but not yet
// returned (see [Reader.Unread]).
func NewReaderAfter(unread []byte, r io.Reader) *Reader {
	p := bytes.NewReader(bytes.Clone(unread))
	return &Reader{br: bufio.NewReaderSize(io.MultiReader(p, r), MaxLine), prefix: p}
}

// ReadLine returns the next line without its line ending. A line longer
// than [MaxLine] is read to its end and discarded, and ReadLine returns
// [ErrLineTooLong]: the next call reads the line after it. At the end of
// the input it returns [io.EOF]; a last line without "\n" is returned
// first. Other errors are the underlying reader's; the part of a line read
// before one is kept, and a later call goes on from it (a read deadline
// loses nothing).
func (r *Reader) ReadLine() (string, error) {
	b, err := r.br.ReadSlice('\n')
	if len(r.partial) > 0 && (err == nil || errors.Is(err, io.EOF)) {
		b = append(r.partial, b...)
		r.partial = nil
		if len(b) > MaxLine {
			return "", ErrLineTooLong
		}
	}
	switch {
	case err == nil:
		b = b[:len(b)-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
		return string(b), nil
	case errors.Is(err, bufio.ErrBufferFull):
		r.partial = nil
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = r.br.ReadSlice('\n')
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		return "", ErrLineTooLong
	case errors.Is(err, io.EOF):
		if len(b) > 0 {
			return string(b), nil
		}
		return "", err
	}
	r.partial = append(r.partial, b...)
	if len(r.partial) > MaxLine {
		r.partial = nil // what is left of it will be read as a line of its own
	}
	return "", err
}

// Unread returns the bytes read from the input and not yet returned as a
// line: what a new Reader of the same connection must read first (see
// [NewReaderAfter]) when this one is abandoned between two lines.
func (r *Reader) Unread() []byte {
	n := r.br.Buffered()
	out := make([]byte, 0, len(r.partial)+n+r.prefix.Len())
	out = append(out, r.partial...)
	buf, err := r.br.Peek(n)
	if err == nil {
		out = append(out, buf...)
	}
	rest := make([]byte, r.prefix.Len())
	if _, err := io.ReadFull(r.prefix, rest); err == nil {
		out = append(out, rest...)
	}
	return out
}
