package fsm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/internal/msgpackcheck"
)

// propData is a data type with every kind of field the copier copies,
// for TestCopyProperty.
type propData struct {
	I      int
	U      uint64
	Ok     bool
	F32    float32
	Str    string
	Bytes  []byte
	Ints   []int
	Leaves []propLeaf
	Arr    [3]propLeaf
	Zero   [0]propLeaf
	P      *propLeaf
	PP     **propLeaf
	M      map[string][]int
	MS     map[int32]propLeaf // values not addressable, with unexported fields
	MM     map[string]map[uint8]string
	MA     map[[2]int8]string // keys that msgpack writes as arrays
	MP     map[string]*propLeaf
	Times  []time.Time
	TM     map[string]time.Time
	Omit   []int     `msgpack:",omitempty"`
	OmitP  *propLeaf `msgpack:",omitempty"`
	Skip   []int     `msgpack:"-"`
	Extra  propExtra `msgpack:",inline"`
	Cnt    propCount
	Cnts   []propCount
	Addr   netip.Addr
	Addrs  map[string][]netip.Addr
	Zone   copyZone // compares its pointer with time.UTC's
	PropEmbedded
	*propHidden
	priv []string
}

type propLeaf struct {
	N   int8
	S   string
	F   float64
	B   []byte
	At  time.Time
	Deg propCelsius
	hid []uint16
}

type propExtra struct{ X, Y []int16 }

// PropEmbedded is embedded in propData, exported; propHidden through a
// pointer, unexported.
type PropEmbedded struct{ E map[string]int }

type propHidden struct{ H []int }

// propCelsius encodes itself, with a value receiver.
type propCelsius float32

func (c propCelsius) EncodeMsgpack(e *msgpack.Encoder) error {
	return e.EncodeString(fmt.Sprintf("%gC", float32(c)))
}

// propCount encodes itself, with a pointer receiver.
type propCount int

func (c *propCount) EncodeMsgpack(e *msgpack.Encoder) error { return e.EncodeInt(int64(*c) * 3) }

// field returns v's field i, settable even if it is unexported (v is
// addressable).
func field(v reflect.Value, i int) reflect.Value {
	f := v.Field(i)
	if !f.CanSet() {
		f = reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
	}
	return f
}

var addrType = reflect.TypeFor[netip.Addr]()

// fill sets v, settable, to a random value: nil slices, maps and
// pointers, empty ones, NaN and infinite floats included.
func fill(v reflect.Value, rnd *rand.Rand) {
	switch v.Type() {
	case addrType:
		a := []string{"10.0.0.1", "::1", "fe80::1%eth0", "192.0.2.7"}
		v.Set(reflect.ValueOf(netip.MustParseAddr(a[rnd.IntN(len(a))])))
		return
	case locationType:
		l := []*time.Location{time.UTC, time.Local, time.FixedZone("f", 7200)}
		v.Set(reflect.ValueOf(l[rnd.IntN(len(l))]))
		return
	}
	if v.Type() == timeType {
		v.Set(reflect.ValueOf(time.Unix(rnd.Int64N(1e10), rnd.Int64N(1e9)).In(time.FixedZone("z", rnd.IntN(4)*1800))))
		return
	}
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(rnd.IntN(2) == 0)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(rnd.Int64() >> rnd.IntN(64))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(rnd.Uint64() >> rnd.IntN(64))
	case reflect.Float32, reflect.Float64:
		f := []float64{math.NaN(), math.Inf(1), math.Copysign(0, -1), 0.5, rnd.NormFloat64()}
		v.SetFloat(f[rnd.IntN(len(f))])
	case reflect.String:
		v.SetString(strings.Repeat(string(rune('a'+rnd.IntN(26))), rnd.IntN(4)))
	case reflect.Slice:
		if rnd.IntN(5) == 0 {
			v.SetZero()
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), rnd.IntN(4), 4))
		for i := range v.Len() {
			fill(v.Index(i), rnd)
		}
	case reflect.Array:
		for i := range v.Len() {
			fill(v.Index(i), rnd)
		}
	case reflect.Map:
		if rnd.IntN(5) == 0 {
			v.SetZero()
			return
		}
		v.Set(reflect.MakeMap(v.Type()))
		for range rnd.IntN(4) {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(k, rnd)
			fill(e, rnd)
			v.SetMapIndex(k, e)
		}
	case reflect.Pointer:
		if rnd.IntN(4) == 0 {
			v.SetZero()
			return
		}
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), rnd)
	case reflect.Struct:
		for i := range v.NumField() {
			fill(field(v, i), rnd)
		}
	default:
		panic("fill: " + v.Type().String())
	}
}

// scribbleAll writes over every piece of memory that v, addressable, holds,
// in place, as a handler writing into its data would.
func scribbleAll(v reflect.Value) {
	switch v.Type() {
	case addrType:
		v.Set(reflect.ValueOf(v.Interface().(netip.Addr).Next()))
		return
	case locationType: // never written, by time's contract
		v.Set(reflect.ValueOf(time.FixedZone("scribbled", 60)))
		return
	}
	if v.Type() == timeType {
		v.Set(reflect.ValueOf(v.Interface().(time.Time).Add(time.Second)))
		return
	}
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(^v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(^v.Uint())
	case reflect.Float32, reflect.Float64:
		v.SetFloat(12345.5)
	case reflect.String:
		v.SetString(v.String() + "!")
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			scribbleAll(v.Index(i))
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			scribbleAll(e) // into the memory the value shares
			v.SetMapIndex(k, e)
		}
	case reflect.Pointer:
		if !v.IsNil() {
			scribbleAll(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			scribbleAll(field(v, i))
		}
	}
}

// dump writes all of v, unexported fields included, maps in the order of
// their keys' dumps, NaN as NaN.
func dump(v reflect.Value) string {
	switch v.Type() {
	case addrType:
		return v.Interface().(netip.Addr).String()
	case locationType:
		return fmt.Sprintf("%s@%p", v.Interface(), v.Interface()) // the pointer too: it is shared
	}
	if v.Type() == timeType {
		return v.Interface().(time.Time).Format(time.RFC3339Nano)
	}
	switch v.Kind() {
	case reflect.Slice:
		if v.IsNil() {
			return "nil"
		}
		fallthrough
	case reflect.Array:
		s := make([]string, v.Len())
		for i := range s {
			s[i] = dump(v.Index(i))
		}
		return "[" + strings.Join(s, " ") + "]"
	case reflect.Map:
		if v.IsNil() {
			return "nil"
		}
		var s []string
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		for it := v.MapRange(); it.Next(); {
			k.SetIterKey(it) // addressable, for its unexported fields
			e.SetIterValue(it)
			s = append(s, dump(k)+":"+dump(e))
		}
		slices.Sort(s)
		return "map[" + strings.Join(s, " ") + "]"
	case reflect.Pointer:
		if v.IsNil() {
			return "nil"
		}
		return "&" + dump(v.Elem())
	case reflect.Struct:
		s := make([]string, v.NumField())
		for i := range s {
			s[i] = dump(field(v, i))
		}
		return "{" + strings.Join(s, " ") + "}"
	}
	return fmt.Sprint(v.Interface())
}

// msgpackValue is d encoded as the Stager encodes, and decoded to compare
// (see msgpackcheck.Value).
func msgpackValue(t *testing.T, d *propData) any {
	t.Helper()
	b, err := encode(d)
	require.NoError(t, err)
	v, err := msgpackcheck.Value(b)
	require.NoError(t, err)
	return v
}

// A copy of random data is the data: msgpack encodes it to the same
// value, and it holds the same, unexported fields included; it stays so
// when every piece of the original's memory is written over, and writing
// over the copy leaves the original as it was. One destination takes copy
// after copy, reusing its memory.
func TestCopyProperty(t *testing.T) {
	cp, ok := copierFor(reflect.TypeFor[propData]())
	require.True(t, ok)
	rnd := rand.New(rand.NewPCG(5, 22))
	var dst propData
	for i := range 300 {
		var src propData
		fill(reflect.ValueOf(&src).Elem(), rnd)
		want, wantDump := msgpackValue(t, &src), dump(reflect.ValueOf(&src).Elem())
		cp(reflect.ValueOf(&dst).Elem(), reflect.ValueOf(&src).Elem())
		require.Equal(t, want, msgpackValue(t, &dst), "%d: msgpack of the copy", i)
		require.Equal(t, wantDump, dump(reflect.ValueOf(&dst).Elem()), "%d: the copy", i)

		scribbleAll(reflect.ValueOf(&src).Elem())
		require.NotEqual(t, wantDump, dump(reflect.ValueOf(&src).Elem()), "%d: scribble wrote", i)
		require.Equal(t, want, msgpackValue(t, &dst), "%d: msgpack of the copy, the original written over", i)
		require.Equal(t, wantDump, dump(reflect.ValueOf(&dst).Elem()), "%d: the copy, the original written over", i)

		srcDump := dump(reflect.ValueOf(&src).Elem())
		scribbleAll(reflect.ValueOf(&dst).Elem())
		require.Equal(t, srcDump, dump(reflect.ValueOf(&src).Elem()), "%d: the original, the copy written over", i)
	}
}
