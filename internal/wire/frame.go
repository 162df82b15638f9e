package wire

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Message is what every message type of this package implements.
type Message interface {
	Append(b []byte) []byte
	Decode(b []byte) error
}

// frameHeader is the size of a frame's length prefix.
const frameHeader = 4

// BeginFrame appends room for a frame's length to b and returns where the
// frame starts; append the message to the result, then call [EndFrame].
func BeginFrame(b []byte) ([]byte, int) {
	return append(b, 0, 0, 0, 0), len(b)
}

// EndFrame writes the length of the frame begun at start. A message longer
// than [MaxFrameSize] is removed again, and EndFrame returns
// [ErrFrameTooLarge].
func EndFrame(b []byte, start int) ([]byte, error) {
	n := len(b) - start - frameHeader
	if n > MaxFrameSize {
		return b[:start], fmt.Errorf("%w: %d bytes, at most %d", ErrFrameTooLarge, n, MaxFrameSize)
	}
	binary.BigEndian.PutUint32(b[start:], uint32(n))
	return b, nil
}

// AppendFrame appends one frame holding m to b.
func AppendFrame(b []byte, m Message) ([]byte, error) {
	b, start := BeginFrame(b)
	return EndFrame(m.Append(b), start)
}

// Reader reads frames from a stream. It is not safe for concurrent use.
//
// A Reader survives a timeout of the underlying reader (a deadline on a
// net.Conn): the bytes of a frame read so far are kept, and the next call to
// [Reader.Next] goes on where the last stopped. Any other error, and a frame
// longer than [MaxFrameSize], leaves the stream out of step: the caller
// should give it up. A stream that ends between frames ends with io.EOF;
// inside one, with io.ErrUnexpectedEOF.
type Reader struct {
	r          io.Reader
	buf        []byte
	start, end int   // buf[start:end] is read and not yet returned
	err        error // an error that came with data, returned once that data is used
}

// NewReader returns a Reader of r with a buffer of size bytes (grown as
// frames need).
func NewReader(r io.Reader, size int) *Reader {
	return &Reader{r: r, buf: make([]byte, max(size, 64))}
}

// Next returns the message of the next frame. The slice aliases the Reader's
// buffer: it is valid until the next call to Next.
func (r *Reader) Next() ([]byte, error) {
	for {
		need := frameHeader
		if avail := r.end - r.start; avail >= frameHeader {
			n := uint64(binary.BigEndian.Uint32(r.buf[r.start:]))
			if n > MaxFrameSize {
				return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrFrameTooLarge, n, MaxFrameSize)
			}
			need += int(n)
			if avail >= need {
				m := r.buf[r.start+frameHeader : r.start+need]
				r.start += need
				return m, nil
			}
		}
		if r.err != nil {
			err := r.err
			r.err = nil
			return nil, r.cut(err)
		}
		r.room(need)
		k, err := r.r.Read(r.buf[r.end:])
		r.end += k
		if err != nil {
			if k == 0 {
				return nil, r.cut(err)
			}
			r.err = err
		}
	}
}

// cut turns the end of the stream inside a frame into io.ErrUnexpectedEOF,
// saying how far into the frame it ended; io.EOF between frames, and any
// other error, stay as they are.
func (r *Reader) cut(err error) error {
	if err == io.EOF && r.end > r.start {
		return fmt.Errorf("%w: the stream ended %d bytes into a frame", io.ErrUnexpectedEOF, r.end-r.start)
	}
	return err
}

// Buffered reports whether bytes are buffered that Next has not returned.
func (r *Reader) Buffered() bool { return r.end > r.start }

// HasFrame reports whether a whole frame is buffered: whether Next will
// return without reading (a frame too large counts: Next returns its error
// at once).
func (r *Reader) HasFrame() bool {
	avail := r.end - r.start
	if avail < frameHeader {
		return false
	}
	n := uint64(binary.BigEndian.Uint32(r.buf[r.start:]))
	return n > MaxFrameSize || uint64(avail) >= frameHeader+n
}

// room makes the buffer able to hold need bytes from r.start, and moves the
// unread bytes to the front when that leaves more room to read into.
func (r *Reader) room(need int) {
	if r.start == r.end {
		r.start, r.end = 0, 0
	}
	if need > len(r.buf) {
		nb := make([]byte, max(need, 2*len(r.buf)))
		r.end = copy(nb, r.buf[r.start:r.end])
		r.start = 0
		r.buf = nb
		return
	}
	if r.start > 0 && (r.start+need > len(r.buf) || r.end == len(r.buf)) {
		r.end = copy(r.buf, r.buf[r.start:r.end])
		r.start = 0
	}
}
