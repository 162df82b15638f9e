package msgpackcheck

import (
	"bytes"
	"fmt"
	"math"

	"github.com/vmihailenco/msgpack/v5"
)

// Value decodes b, one msgpack value that Check passes, into a Go value
// made to be compared with another by reflect.DeepEqual: every map as a
// map[any]any (msgpack decodes a map into a map[string]any by default, and
// fails on any other key), every integer as an int64 (a uint64 if it is too
// large for one) and every float as a float64, whatever width and
// signedness it was written with. Two encodings of
// one value (a map's keys written in another order: msgpack sorts the keys
// of only a few map types) give equal values.
func Value(b []byte) (v any, err error) {
	if err := Check(b); err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil { // a map key that is an array or a map
			v, err = nil, fmt.Errorf("msgpack: %v", p)
		}
	}()
	d := msgpack.NewDecoder(bytes.NewReader(b))
	d.UseLooseInterfaceDecoding(true)
	d.SetMapDecoder(func(d *msgpack.Decoder) (any, error) { return d.DecodeUntypedMap() })
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return normal(v), nil
}

// normal makes the unsigned integers in v that fit in an int64 int64s.
func normal(v any) any {
	switch v := v.(type) {
	case uint64:
		if v <= math.MaxInt64 {
			return int64(v)
		}
	case []any:
		for i := range v {
			v[i] = normal(v[i])
		}
	case map[any]any:
		m := make(map[any]any, len(v))
		for k, e := range v {
			m[normal(k)] = normal(e)
		}
		return m
	}
	return v
}

// DecodeMap decodes a map into an any as msgpack does (a map[string]any)
// when its keys are all strings, and as a map[any]any when they are not,
// where msgpack alone fails ("invalid code ... decoding string/bytes
// length"). Set it with a Decoder's SetMapDecoder after its Reset (which
// clears it): then data whose `any` fields hold a map[int]string, say,
// decodes.
func DecodeMap(d *msgpack.Decoder) (any, error) {
	m, err := d.DecodeUntypedMap()
	if err != nil {
		return nil, err
	}
	s := make(map[string]any, len(m))
	for k, v := range m {
		ks, ok := k.(string)
		if !ok {
			return m, nil
		}
		s[ks] = v
	}
	return s, nil
}
