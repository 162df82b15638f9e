package msgpackcheck

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// Decode decodes b, which must hold exactly one msgpack value, into v (a
// pointer): it checks b first (Check), decodes a map in an `any` with
// DecodeMap, and returns an error for any malformed input, never a panic.
// It is the decoder of every byte string from outside the process (fsm's
// data and events, a plugin's replies), and reuses its decoders.
func Decode(b []byte, v any) (err error) {
	if err := Check(b); err != nil {
		return err
	}
	defer func() {
		// A decoder that panicked is not put back.
		if p := recover(); p != nil {
			err = fmt.Errorf("msgpack: %v", p)
		}
	}()
	d := decoders.Get().(*decoder)
	err = d.decode(b, v)
	decoders.Put(d)
	return err
}

// A decoder is a msgpack decoder bound to the reader it reads from.
type decoder struct {
	dec *msgpack.Decoder
	in  bytes.Reader
}

var decoders = sync.Pool{New: func() any { return newDecoder() }}

func newDecoder() *decoder {
	d := new(decoder)
	d.dec = msgpack.NewDecoder(&d.in)
	return d
}

// decode decodes b, checked, into v.
func (d *decoder) decode(b []byte, v any) error {
	d.in.Reset(b)
	d.dec.Reset(&d.in) // every option back to its default, as Reset of a new decoder
	d.dec.SetMapDecoder(DecodeMap)
	err := d.dec.Decode(v)
	if err == nil && d.in.Len() > 0 {
		err = ErrTrailing
	}
	d.in.Reset(nil) // hold no caller's bytes in the pool
	return err
}
