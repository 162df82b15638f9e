package plugin

import (
	"sync"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/internal/appendbuf"
	"github.com/hotline-go/hotline/internal/wire"
)

// scratch is what one event's encoding needs, reused from a pool: an
// encoder that appends, and the buffers it appends to. Nothing that
// outlives the event may alias its buffers.
type scratch struct {
	enc  *msgpack.Encoder
	out  appendbuf.Buffer // values: an event's payload, the actions' values
	body []byte           // a call's or a result's body
	strs wire.Strings     // the plugin's calls' version, state and event names
}

// scratchKeep is the largest buffer a scratch keeps between events.
const scratchKeep = 64 << 10

var scratches = sync.Pool{New: func() any {
	s := &scratch{enc: msgpack.NewEncoder(nil)}
	s.enc.SetSortMapKeys(true)
	return s
}}

func getScratch() *scratch {
	s := scratches.Get().(*scratch)
	s.enc.Reset(&s.out)
	s.enc.SetSortMapKeys(true)
	return s
}

func putScratch(s *scratch) {
	if cap(s.out.B) > scratchKeep || cap(s.body) > scratchKeep {
		return
	}
	s.out.B, s.body = s.out.B[:0], s.body[:0]
	scratches.Put(s)
}

// encode appends the msgpack of v to s.out and returns its bytes, which
// alias s.out until the next encode.
func (s *scratch) encode(v any) ([]byte, error) {
	start := len(s.out.B)
	if err := s.enc.Encode(v); err != nil {
		s.out.B = s.out.B[:start]
		return nil, err
	}
	return s.out.B[start:len(s.out.B):len(s.out.B)], nil
}

// decodeValue decodes one msgpack value, which must be all of b, as
// msgpack decodes into an any: the scalars that replies usually are (nil,
// booleans, fixed integers, short strings) without a decoder, the rest
// with one.
func decodeValue(b []byte) (any, error) {
	if len(b) == 1 {
		switch c := b[0]; {
		case c <= 0x7f || c >= 0xe0: // positive and negative fixint
			return int8(c), nil
		case c == 0xc0:
			return nil, nil
		case c == 0xc2:
			return false, nil
		case c == 0xc3:
			return true, nil
		}
	}
	if len(b) > 0 && b[0]&0xe0 == 0xa0 && len(b) == 1+int(b[0]&0x1f) { // fixstr, whole
		return string(b[1:]), nil
	}
	if len(b) == 2 {
		switch b[0] {
		case 0xcc:
			return b[1], nil
		case 0xd0:
			return int8(b[1]), nil
		}
	}
	var v any
	if len(b) > 0 {
		if err := unmarshal(b, &v); err != nil {
			return nil, err
		}
	}
	return v, nil
}
