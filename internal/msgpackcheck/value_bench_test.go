package msgpackcheck_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/internal/msgpackcheck"
)

// twoMaps is DecodeMap as it was (e85ea40): every map decoded as a
// map[any]any, then copied into a map[string]any when its keys are
// strings. The baseline of BenchmarkDecodeMap.
func twoMaps(d *msgpack.Decoder) (any, error) {
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

// BenchmarkDecodeMap decodes data with a map of 16 string keys into an
// any, with DecodeMap and with the baseline, in one run.
func BenchmarkDecodeMap(b *testing.B) {
	m := map[string]any{}
	for i := range 16 {
		m[fmt.Sprint("key", i)] = i
	}
	raw, err := msgpack.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	for _, bm := range []struct {
		name string
		fn   func(*msgpack.Decoder) (any, error)
	}{{"baseline-two-maps", twoMaps}, {"DecodeMap", msgpackcheck.DecodeMap}} {
		b.Run(bm.name, func(b *testing.B) {
			var r bytes.Reader
			d := msgpack.NewDecoder(&r)
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(raw)
				d.Reset(&r)
				d.SetMapDecoder(bm.fn)
				var v any
				if err := d.Decode(&v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
