package fsm

import (
	"runtime/debug"
	"sync"
	"unsafe"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/internal/appendbuf"
	"github.com/hotline-go/hotline/internal/msgpackcheck"
	"github.com/vmihailenco/msgpack/v5"
)

// The codec is on the path of every event of a plugin-hosted machine (the
// plugin decodes the data and the event, and encodes the data, each time),
// so what a call needs beyond the bytes it returns is reused: an encoder
// with the buffer it appends to, kept in a pool (a cache, not state: any
// pooled one does), and msgpackcheck's pooled decoders.

// An encoder is a msgpack encoder bound to the buffer it appends to.
type encoder struct {
	enc *msgpack.Encoder
	out appendbuf.Buffer
}

func newEncoder() *encoder {
	e := new(encoder)
	e.enc = msgpack.NewEncoder(&e.out)
	return e
}

// keepBuffer is the largest buffer a pooled encoder keeps: data larger
// than this is rare, and is not worth holding on to.
const keepBuffer = 64 << 10

var (
	encoders = sync.Pool{New: func() any { return newEncoder() }}
)

// encode returns v as msgpack, with msgpack's SetSortMapKeys on: the keys
// of map[string]string, map[string]bool and map[string]any come out sorted;
// those of other maps (a map[string]int, say) in Go's random order, so equal
// data does not always encode to equal bytes, and what compares data (fsm's
// RoundTrip, a shadow's replies) compares decoded values (msgpackcheck.Value). The bytes are the
// caller's: one allocation of their exact size.
func encode(v any) ([]byte, error) {
	e := encoders.Get().(*encoder)
	b, err := e.encode(v)
	// An encoder that failed is not put back: a value's own encoder may
	// have failed halfway, or kept the Encoder it was given.
	if err == nil && cap(e.out.B) <= keepBuffer {
		encoders.Put(e)
	}
	return b, err
}

func (e *encoder) encode(v any) ([]byte, error) {
	e.out.B = e.out.B[:0]
	// Reset sets every option back (a value's own EncodeMsgpack may
	// have changed some), and it is cheap: the writer is the same.
	e.enc.Reset(&e.out)
	e.enc.SetSortMapKeys(true)
	if err := e.enc.Encode(v); err != nil {
		return nil, err
	}
	b := make([]byte, len(e.out.B))
	copy(b, e.out.B)
	return b, nil
}

// decode decodes b, which must hold exactly one msgpack value, into v (a
// pointer). It returns an error for any malformed input and never panics.
func decode(b []byte, v any) error { return msgpackcheck.Decode(b, v) }

// protect runs f and turns a panic in it into a *actor.PanicError, for the
// code a change of code runs: a failed change must leave the machine as it
// was, whatever the code does.
func protect(f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &actor.PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return f()
}

// eventDecoder returns a function that decodes msgpack into an E, for an
// event type's entry.
func eventDecoder[E any]() func(raw []byte) (any, error) {
	box := boxer[E]()
	return func(raw []byte) (any, error) {
		p := new(E)
		if err := decode(raw, p); err != nil {
			return nil, err
		}
		return box(p), nil
	}
}

// boxer returns a function that returns *p in an interface, without the
// copy that converting *p would make where E is not pointer-shaped: the
// interface then points at p, which the caller must not use again.
func boxer[E any]() func(p *E) any {
	// An interface holds a zero value of a pointer-shaped type (a
	// pointer, a map, a struct of one pointer) as a nil data word, which
	// converting copies nothing to; any other value, as a pointer to it.
	if dataWord(*new(E)) == nil {
		return func(p *E) any { return *p }
	}
	typ := typeWord(*new(E))
	return func(p *E) any {
		var v any
		w := (*[2]unsafe.Pointer)(unsafe.Pointer(&v))
		w[0], w[1] = typ, unsafe.Pointer(p)
		return v
	}
}

// dataWord returns the word of an interface value that holds or points at
// its value.
func dataWord(v any) unsafe.Pointer {
	return (*[2]unsafe.Pointer)(unsafe.Pointer(&v))[1]
}
