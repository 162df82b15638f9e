package pluginrpc

import (
	"io"
	"net"
	"sync"
	"time"

	"github.com/hotline-go/hotline/internal/wire"
)

// frameWriter writes frames to a stream for any number of goroutines, and
// combines them: a writer that finds another one flushing leaves its frame
// in the buffer and returns; the flushing one writes everything buffered,
// in order, in one system call per round. One writer alone costs one write;
// many at once share writes, with no goroutine of its own.
//
// A write error sticks: every later write returns it. A frame appended by a
// goroutine that returned before the flush is lost with the stream; the
// reader of the other end will learn of it as the stream's death.
type frameWriter struct {
	w       io.Writer
	timeout time.Duration // if > 0 and w is a net.Conn: the deadline of each write

	deadline time.Time // the write deadline last set (by the flushing goroutine)

	mu       sync.Mutex
	buf      []byte // frames waiting to be written
	spare    []byte // the buffer being written, reused for the next round
	flushing bool
	err      error
}

// bufKeep is the largest buffer kept between rounds; a larger one (after a
// large frame) is dropped.
const bufKeep = 64 << 10

func newFrameWriter(w io.Writer, timeout time.Duration) *frameWriter {
	return &frameWriter{w: w, timeout: timeout, buf: make([]byte, 0, 4096), spare: make([]byte, 0, 4096)}
}

// writeRequest appends r as a frame and flushes unless another goroutine
// is. A frame too large is refused with wire.ErrFrameTooLarge, and the
// stream is intact.
func (f *frameWriter) writeRequest(r *wire.Request) error {
	f.mu.Lock()
	if f.err != nil {
		err := f.err
		f.mu.Unlock()
		return err
	}
	b, start := wire.BeginFrame(f.buf)
	b, err := wire.EndFrame(r.Append(b), start)
	f.buf = b
	if err != nil {
		f.mu.Unlock()
		return err
	}
	return f.flushLocked()
}

// writeResponse is writeRequest for a response. If later is set and the
// buffer is small, it only appends the frame: a later write or flush
// writes it.
func (f *frameWriter) writeResponse(r *wire.Response, later bool) error {
	f.mu.Lock()
	if f.err != nil {
		err := f.err
		f.mu.Unlock()
		return err
	}
	b, start := wire.BeginFrame(f.buf)
	b, err := wire.EndFrame(r.Append(b), start)
	f.buf = b
	if err != nil || (later && len(f.buf) < bufKeep) {
		f.mu.Unlock()
		return err
	}
	return f.flushLocked()
}

// flush writes what is buffered, unless another goroutine is at it.
func (f *frameWriter) flush() error {
	f.mu.Lock()
	if f.err != nil {
		err := f.err
		f.mu.Unlock()
		return err
	}
	return f.flushLocked()
}

// writeRaw writes bytes as they are (test seam: a malformed frame).
func (f *frameWriter) writeRaw(p []byte) error {
	f.mu.Lock()
	if f.err != nil {
		err := f.err
		f.mu.Unlock()
		return err
	}
	f.buf = append(f.buf, p...)
	return f.flushLocked()
}

// flushLocked is called with f.mu held and releases it.
func (f *frameWriter) flushLocked() error {
	if f.flushing {
		f.mu.Unlock()
		return nil
	}
	f.flushing = true
	for len(f.buf) > 0 && f.err == nil {
		out := f.buf
		f.buf = f.spare[:0]
		f.mu.Unlock()
		err := f.write(out)
		f.mu.Lock()
		if cap(out) <= bufKeep {
			f.spare = out[:0]
		} else {
			f.spare = make([]byte, 0, 4096)
		}
		if err != nil {
			f.err = err
		}
	}
	f.flushing = false
	err := f.err
	f.mu.Unlock()
	return err
}

// write writes p, with a deadline between f.timeout and twice f.timeout
// from now: the deadline moves only when less than f.timeout is left, so
// that writes in a row do not each move the socket's timer.
func (f *frameWriter) write(p []byte) error {
	if c, ok := f.w.(net.Conn); ok && f.timeout > 0 {
		if now := time.Now(); f.deadline.Sub(now) < f.timeout {
			f.deadline = now.Add(2 * f.timeout)
			if err := c.SetWriteDeadline(f.deadline); err != nil {
				return err
			}
		}
	}
	_, err := f.w.Write(p)
	return err
}
