package protocol

import (
	"bufio"
	"errors"
	"io"
)

// A Reader reads lines of at most [MaxLine] bytes. It is not safe for
// concurrent use; the zero value is not usable (use [NewReader]).
type Reader struct {
	br *bufio.Reader
}

// NewReader returns a Reader of r, buffering at most [MaxLine] bytes.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, MaxLine)}
}

// ReadLine returns the next line without its line ending. A line longer
// than [MaxLine] is read to its end and discarded, and ReadLine returns
// [ErrLineTooLong]: the next call reads the line after it. At the end of
// the input it returns [io.EOF]; a last line without "\n" is returned
// first. Other errors are the underlying reader's.
func (r *Reader) ReadLine() (string, error) {
	b, err := r.br.ReadSlice('\n')
	switch {
	case err == nil:
		b = b[:len(b)-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
		return string(b), nil
	case errors.Is(err, bufio.ErrBufferFull):
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = r.br.ReadSlice('\n')
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		return "", ErrLineTooLong
	case errors.Is(err, io.EOF) && len(b) > 0:
		return string(b), nil
	}
	return "", err
}
