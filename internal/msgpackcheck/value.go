package msgpackcheck

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Value decodes b, one msgpack value that Check passes, into a Go value
// made to be compared with another by reflect.DeepEqual: every map as a
// map[any]any (msgpack decodes a map into a map[string]any by default, and
// fails on any other key), every integer as an int64 (a uint64 if it is too
// large for one), every float as a float64, whatever width and signedness
// it was written with, and a bin as a string. Two encodings of one value
// (a map's keys written in another order: msgpack sorts the keys of only a
// few map types) give equal values.
//
// Three kinds of values are stood for, so that DeepEqual finds equal
// values equal: a NaN float (which is equal to nothing, itself included)
// by a value of an unexported type; a map key that is an array or a map
// (a Go map[[2]int]string, or a map whose keys are structs, which msgpack
// writes as maps), which no map[any]any can hold, by a comparable value
// of an unexported type that holds the key's own value in a canonical
// text; and a map's NaN keys (which a map holds as many of as were
// written) by one key whose value is the list of their values, in a
// canonical order. The types are unexported: compare the values, do not
// look inside them.
func Value(b []byte) (v any, err error) {
	if err := Check(b); err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil {
			v, err = nil, fmt.Errorf("msgpack: %v", p)
		}
	}()
	d := msgpack.NewDecoder(bytes.NewReader(b))
	d.UseLooseInterfaceDecoding(true)
	d.SetMapDecoder(valueMap)
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return normal(v), nil
}

// nan stands for a NaN float in a Value.
type nan struct{}

// nanKeys is the key of a map's NaN keys in a Value: its value is the list
// of theirs, in the order of their canonical texts.
type nanKeys struct{}

// compositeKey stands for a map key that is an array or a map in a Value:
// the canonical text of its value.
type compositeKey struct{ text string }

// valueMap decodes a map for Value: its keys and values normal, a key
// that cannot be a Go map's as a compositeKey, its NaN keys under nanKeys.
func valueMap(d *msgpack.Decoder) (any, error) {
	n, err := d.DecodeMapLen()
	if err != nil || n < 0 {
		return nil, err
	}
	m := make(map[any]any, n)
	var nans []any
	for range n {
		k, err := d.DecodeInterfaceLoose()
		if err != nil {
			return nil, err
		}
		e, err := d.DecodeInterfaceLoose()
		if err != nil {
			return nil, err
		}
		e = normal(e)
		switch k := normal(k).(type) {
		case nan:
			nans = append(nans, e)
		case []any, map[any]any:
			m[compositeKey{canonical(k)}] = e
		default:
			m[k] = e
		}
	}
	if nans != nil {
		slices.SortStableFunc(nans, func(a, b any) int { return strings.Compare(canonical(a), canonical(b)) })
		m[nanKeys{}] = nans
	}
	return m, nil
}

// normal makes the unsigned integers in v that fit in an int64 int64s,
// and NaN floats nan. Maps are made normal by valueMap.
func normal(v any) any {
	switch x := v.(type) {
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x)
		}
	case float64:
		if math.IsNaN(x) {
			return nan{}
		}
	case []any:
		for i := range x {
			x[i] = normal(x[i])
		}
	}
	return v
}

// canonical is a text of v, a normal value, that is the same for values
// that DeepEqual finds equal and differs otherwise: a map's pairs in the
// order of their texts. Every piece is self-delimiting (a tag, a length,
// the bytes), never escaped: a key's text holds the texts of the keys
// inside it as they are, so that its length grows with the depth of the
// nesting, not twice per level (quoted, a 40-byte map of maps as keys of
// maps had a text of a terabyte).
func canonical(v any) string {
	var b strings.Builder
	writeCanonical(&b, v)
	return b.String()
}

// writeLeaf writes a piece of a canonical text: tag, len(s), ':', s.
func writeLeaf(b *strings.Builder, tag byte, s string) {
	b.WriteByte(tag)
	b.WriteString(strconv.Itoa(len(s)))
	b.WriteByte(':')
	b.WriteString(s)
}

func writeCanonical(b *strings.Builder, v any) {
	switch x := v.(type) {
	case []any:
		b.WriteByte('[')
		for _, e := range x {
			writeCanonical(b, e)
		}
		b.WriteByte(']')
	case map[any]any:
		pairs := make([]string, 0, len(x))
		for k, e := range x {
			pairs = append(pairs, canonical(k)+canonical(e))
		}
		slices.Sort(pairs)
		b.WriteByte('{')
		for _, p := range pairs {
			b.WriteString(p)
		}
		b.WriteByte('}')
	case string:
		writeLeaf(b, 's', x)
	case compositeKey:
		writeLeaf(b, 'k', x.text)
	case float64:
		if x == 0 {
			x = 0 // -0 == 0, as DeepEqual has it
		}
		writeLeaf(b, 'f', strconv.FormatFloat(x, 'g', -1, 64))
	default: // nil, bool, int64, uint64, nan, a time, an extension's type
		writeLeaf(b, 'v', fmt.Sprintf("%T(%+v)", x, x))
	}
}

// DecodeMap decodes a map into an any as msgpack does (a map[string]any,
// str and bin keys as strings) when its keys are all strings or bins, and
// as a map[any]any when they are not, where msgpack alone fails ("invalid
// code ... decoding string/bytes length"). A key that is an array or a
// map, which no Go map holds, is an error that says so. Set it with a
// Decoder's SetMapDecoder after its Reset (which clears it), on a decoder
// in msgpack's default (not loose) interface decoding: then data whose
// `any` fields hold a map[int]string, say, decodes.
func DecodeMap(d *msgpack.Decoder) (any, error) {
	n, err := d.DecodeMapLen()
	if err != nil {
		return nil, err
	}
	if n < 0 {
		return map[string]any(nil), nil
	}
	s := make(map[string]any, n)
	var m map[any]any // once a key is not a string
	for range n {
		var k any
		c, err := d.PeekCode()
		if err != nil {
			return nil, err
		}
		if msgpcode.IsString(c) || msgpcode.IsBin(c) {
			// As msgpack's own DecodeMap: a map[[16]byte]T writes its
			// keys as bins.
			k, err = d.DecodeString()
		} else {
			k, err = d.DecodeInterface()
		}
		if err != nil {
			return nil, err
		}
		v, err := d.DecodeInterface()
		if err != nil {
			return nil, err
		}
		ks, isString := k.(string)
		switch {
		case m == nil && isString:
			s[ks] = v
			continue
		case k != nil && !reflect.TypeOf(k).Comparable():
			return nil, fmt.Errorf("msgpack: a map key that is %T cannot be a Go map's key, in an any", k)
		case m == nil:
			m = make(map[any]any, n)
			for k, v := range s {
				m[k] = v
			}
		}
		m[k] = v
	}
	if m != nil {
		return m, nil
	}
	return s, nil
}
