package plugin

import (
	"bytes"
	"slices"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/internal/msgpackcheck"
)

// Event is an event payload that crossed a process as msgpack and was not
// decoded into a Go type: on the host, the payload of a next event or a
// timeout that a plugin-hosted machine set (it goes back to the plugin as
// it came); in a plugin, the payload of an event that no handler takes
// (an [fsm.Machine.OnUnknown] handler gets it). It is dispatched by Name,
// and encodes as Raw, so an in-process version of the machine decodes it
// into its own type of that name after a change of code.
type Event struct {
	Name string
	Raw  []byte // one msgpack value
}

// EventName returns e.Name: see [fsm.Named].
func (e Event) EventName() string { return e.Name }

// EncodeMsgpack writes Raw as it is.
func (e Event) EncodeMsgpack(enc *msgpack.Encoder) error {
	if len(e.Raw) == 0 {
		return enc.EncodeNil()
	}
	_, err := enc.Writer().Write(e.Raw)
	return err
}

// DecodeMsgpack keeps the next msgpack value as Raw; the name stays.
func (e *Event) DecodeMsgpack(dec *msgpack.Decoder) error {
	raw, err := dec.DecodeRaw()
	e.Raw = slices.Clone([]byte(raw))
	return err
}

// Decode decodes e's payload into v, a pointer.
func (e Event) Decode(v any) error { return unmarshal(e.Raw, v) }

// As decodes v, a value that crossed from a plugin (a reply, decoded as
// generic msgpack: maps, slices, strings, numbers; or an [Event]), into a
// T, through msgpack: the fields of a struct are matched by name.
func As[T any](v any) (T, error) {
	var t T
	var raw []byte
	switch x := v.(type) {
	case Event:
		raw = x.Raw
	default:
		var err error
		if raw, err = marshal(v); err != nil {
			return t, err
		}
	}
	err := unmarshal(raw, &t)
	return t, err
}

func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.GetEncoder()
	defer msgpack.PutEncoder(enc)
	enc.Reset(&buf)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// unmarshal decodes b, bytes from the other process, into v, checked and
// without panicking (msgpackcheck.Decode: a few bytes of a declared
// length must not make this process allocate gigabytes; a map in an any
// whose keys are not strings is a map[any]any).
func unmarshal(b []byte, v any) error { return msgpackcheck.Decode(b, v) }
