package fsm

import (
	"bytes"
	"fmt"
	"runtime/debug"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/internal/msgpackcheck"
	"github.com/vmihailenco/msgpack/v5"
)

// encode returns v as msgpack, with the keys of string-keyed maps sorted so
// that equal data encodes to equal bytes.
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.GetEncoder()
	enc.Reset(&buf)
	enc.SetSortMapKeys(true)
	err := enc.Encode(v)
	msgpack.PutEncoder(enc)
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decode decodes b, which must hold exactly one msgpack value, into v (a
// pointer). It returns an error for any malformed input and never panics.
func decode(b []byte, v any) (err error) {
	if err := msgpackcheck.Check(b); err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("msgpack: %v", p)
		}
	}()
	r := bytes.NewReader(b)
	dec := msgpack.GetDecoder()
	dec.Reset(r)
	err = dec.Decode(v)
	msgpack.PutDecoder(dec)
	if err == nil && r.Len() > 0 {
		err = msgpackcheck.ErrTrailing
	}
	return err
}

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
