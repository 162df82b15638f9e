package fsm

import (
	"bytes"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/internal/msgpackcheck"
)

// codecData is data of the size a plugin event carries (about 200 bytes).
type codecData struct {
	N    int
	Seen []string
	Blob []byte
	Tags map[string]string
}

func sampleData() codecData {
	return codecData{N: 7, Seen: []string{"incr", "incr", "fired"}, Blob: bytes.Repeat([]byte{0xab}, 150),
		Tags: map[string]string{"b": "2", "a": "1", "c": "3"}}
}

// TestEncodeOwnsItsBytes: what encode returns is the caller's, not a
// pooled buffer that the next encode writes over.
func TestEncodeOwnsItsBytes(t *testing.T) {
	a, err := encode(sampleData())
	require.NoError(t, err)
	want := bytes.Clone(a)
	for i := range 10 {
		_, err := encode(codecData{N: i, Seen: []string{strings.Repeat("x", 300)}})
		require.NoError(t, err)
	}
	require.Equal(t, want, a)
	require.Equal(t, len(a), cap(a), "one allocation of the exact size")
}

// optionSetter changes the options of the encoder and the decoder it is
// given, as a value's own EncodeMsgpack or DecodeMsgpack may.
type optionSetter struct{}

func (optionSetter) EncodeMsgpack(e *msgpack.Encoder) error {
	e.SetSortMapKeys(false)
	e.UseArrayEncodedStructs(true)
	return e.EncodeNil()
}

func (*optionSetter) DecodeMsgpack(d *msgpack.Decoder) error {
	d.UseLooseInterfaceDecoding(true)
	return d.DecodeNil()
}

// TestPooledCodersForgetOptions: options a value's own code sets on the
// encoder or the decoder do not reach the next value.
func TestPooledCodersForgetOptions(t *testing.T) {
	keys := make(map[string]any) // a type whose keys msgpack sorts

	for i := range 40 {
		keys[string(rune('a'+i%26))+strings.Repeat("k", i/26)] = i
	}
	var ref bytes.Buffer
	require.NoError(t, msgpack.NewEncoder(&ref).SetSortMapKeys(true).Encode(keys))
	type pair struct{ A, B int }
	pairBytes, err := msgpack.Marshal(pair{1, 2})
	require.NoError(t, err)

	for range 20 { // the pool may hand out another encoder; try a few times
		_, err := encode(optionSetter{})
		require.NoError(t, err)
		b, err := encode(keys)
		require.NoError(t, err)
		require.Equal(t, ref.Bytes(), b, "map keys sorted")
		b, err = encode(pair{1, 2})
		require.NoError(t, err)
		require.Equal(t, pairBytes, b, "struct as a map")

		var o optionSetter
		require.NoError(t, decode([]byte{0xc0}, &o))
		var v any
		require.NoError(t, decode([]byte{0x01}, &v))
		require.IsType(t, int8(0), v, "loose interface decoding is off")
	}
}

// TestDecodeHoldsNoInput: a decoder back in the pool keeps no reference to
// the bytes it read.
func TestDecodeHoldsNoInput(t *testing.T) {
	b, err := encode(sampleData())
	require.NoError(t, err)
	var d codecData
	require.NoError(t, decode(b, &d))
	require.Equal(t, sampleData(), d)
	// What a failed decode read is forgotten too: the next decode of
	// the same decoder sees only its own input.
	require.ErrorIs(t, decode(append(bytes.Clone(b), 0x01), &d), msgpackcheck.ErrTrailing)
	var n int
	require.NoError(t, decode([]byte{0x05}, &n))
	require.Equal(t, 5, n)
}

type (
	evStruct  struct{ A, B int }
	evEmpty   struct{}
	evPtrOnly struct{ P *int }
	evString  string
	evArray   [3]int
	evMap     map[string]int
)

// TestEventDecoder: an event decoded by eventDecoder is the value that
// decoding into its type gives, whatever the shape of the type (held in
// the interface's word, or pointed at), and each decode is a value of
// its own.
func TestEventDecoder(t *testing.T) {
	seven := 7
	check := func(t *testing.T, want any, dec func([]byte) (any, error)) {
		t.Helper()
		raw, err := encode(want)
		require.NoError(t, err)
		got, err := dec(raw)
		require.NoError(t, err)
		require.Equal(t, want, got)
		again, err := dec(raw)
		require.NoError(t, err)
		require.Equal(t, got, again)
		_, err = dec([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})
		require.ErrorContains(t, err, "length beyond the input")
	}
	t.Run("struct", func(t *testing.T) {
		dec := eventDecoder[evStruct]()
		check(t, evStruct{A: 1, B: 2}, dec)
		raw, err := encode(evStruct{A: 3})
		require.NoError(t, err)
		a, err := dec(raw)
		require.NoError(t, err)
		b, err := dec(raw)
		require.NoError(t, err)
		require.True(t, a == b, "equal values compare equal in interfaces")
		require.NotEqual(t, uintptr(dataWord(a)), uintptr(dataWord(b)), "each decode is its own value")
		require.Equal(t, evStruct{A: 3}, a.(evStruct))
	})
	t.Run("empty", func(t *testing.T) { check(t, evEmpty{}, eventDecoder[evEmpty]()) })
	t.Run("pointer-shaped struct", func(t *testing.T) { check(t, evPtrOnly{P: &seven}, eventDecoder[evPtrOnly]()) })
	t.Run("pointer", func(t *testing.T) { check(t, &evStruct{A: 5}, eventDecoder[*evStruct]()) })
	t.Run("map", func(t *testing.T) { check(t, evMap{"a": 1}, eventDecoder[evMap]()) })
	t.Run("string", func(t *testing.T) { check(t, evString("hello"), eventDecoder[evString]()) })
	t.Run("array", func(t *testing.T) { check(t, evArray{1, 2, 3}, eventDecoder[evArray]()) })
	t.Run("int", func(t *testing.T) { check(t, 42, eventDecoder[int]()) })
}

// TestCodecAllocations: the codec allocates only what it returns and what
// the value's own fields need (decoding: msgpackcheck's
// TestDecodeAllocations). (With an encoder held here: the race detector's
// sync.Pool drops some of what it is given.)
func TestCodecAllocations(t *testing.T) {
	type flat struct{ A, B, C int }
	f := flat{1, 2, 3}
	e := encoders.New().(*encoder)
	require.Equal(t, 1.0, testing.AllocsPerRun(100, func() {
		if _, err := e.encode(&f); err != nil {
			t.Fatal(err)
		}
	}), "encode: the bytes returned")
	box := boxer[flat]()
	p := &flat{4, 5, 6}
	var v any
	require.Zero(t, testing.AllocsPerRun(100, func() { v = box(p) }), "an event put in its interface")
	require.Equal(t, flat{4, 5, 6}, v)
	require.Equal(t, unsafe.Pointer(p), dataWord(v), "the interface points at the value decoded")
	deep := append([]byte(strings.Repeat("\x91", 12)), 0xc0)
	require.Zero(t, testing.AllocsPerRun(100, func() {
		if err := msgpackcheck.Check(deep); err != nil {
			t.Fatal(err)
		}
	}), "check of data nested 12 deep")
}

// BenchmarkCodec is fsm's codec alone on data of the size a plugin event
// carries: what the plugin does to the data and the event of each event.
func BenchmarkCodec(b *testing.B) {
	data := sampleData()
	raw, err := encode(data)
	require.NoError(b, err)
	type pad struct {
		Blob []byte
		Note string
	}
	ev, err := encode(pad{Note: strings.Repeat("n", 60)})
	require.NoError(b, err)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encode(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var d codecData
			if err := decode(raw, &d); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("check", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := msgpackcheck.Check(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	m := Define("bench", "v1", "s", codecData{})
	OnAny(m, func(_ pad, d codecData) Result[codecData] { return Keep(d) })
	b.Run("event", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.DecodeEvent(b.Context(), "v1", "pad", ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}
