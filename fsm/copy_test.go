package fsm

import (
	"context"
	"math/big"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"weak"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/actor/actortest"
)

type copyInner struct {
	Tags  []string
	Score float64
	hid   []int
}

type copyEmbedded struct{ Extra []byte }

type copyData struct {
	Name    string
	Numbers []int
	Blob    []byte
	Empty   []int // empty, not nil: msgpack tells them apart
	Nil     []int
	Arr     [3][]int
	Ptr     *copyInner
	NilPtr  *copyInner
	Inner   copyInner
	Inners  []copyInner
	Map     map[string][]int
	Flat    map[int]string
	At      time.Time
	Skipped []int `msgpack:"-"`
	copyEmbedded
	private []int
	mu      sync.Mutex // shallow: copied as it is
}

func sampleCopyData(rnd *rand.Rand) *copyData {
	ints := func() []int {
		s := make([]int, rnd.IntN(6))
		for i := range s {
			s[i] = rnd.Int()
		}
		return s
	}
	d := &copyData{
		Name:    strings.Repeat("n", rnd.IntN(5)),
		Numbers: ints(),
		Blob:    []byte(strings.Repeat("b", rnd.IntN(200))),
		Empty:   []int{},
		Arr:     [3][]int{ints(), nil, ints()},
		Ptr:     &copyInner{Tags: []string{"a", "b"}, Score: rnd.Float64(), hid: ints()},
		Inner:   copyInner{Tags: []string{"c"}, hid: ints()},
		Inners:  []copyInner{{Tags: []string{"d"}}, {Score: 2}},
		Map:     map[string][]int{"x": ints(), "y": nil},
		Flat:    map[int]string{1: "one", 2: "two"},
		At:      time.Unix(rnd.Int64N(1e9), 0).In(time.FixedZone("z", 3600)),
		Skipped: ints(),
		private: ints(),
	}
	d.Extra = ints2bytes(ints())
	return d
}

func ints2bytes(s []int) []byte {
	b := make([]byte, len(s))
	for i, v := range s {
		b[i] = byte(v)
	}
	return b
}

// decoded is d as msgpack sees it: encoded, then decoded (the bytes are
// not compared: msgpack does not sort the keys of every map type).
func decoded(t *testing.T, d *copyData) *copyData {
	b, err := encode(d)
	require.NoError(t, err)
	var v copyData
	require.NoError(t, decode(b, &v))
	return &v
}

// scribble writes over every piece of memory that d holds, as a handler
// that writes into its data's slices and maps would.
func scribble(d *copyData) {
	d.Name = "changed"
	for _, s := range [][]int{d.Numbers, d.Arr[0], d.Arr[2], d.Map["x"], d.private, d.Skipped, d.Inner.hid, d.Ptr.hid} {
		for i := range s {
			s[i] = -1
		}
	}
	for i := range d.Blob {
		d.Blob[i] = 'X'
	}
	for i := range d.Extra {
		d.Extra[i] = 'X'
	}
	d.Ptr.Tags[0], d.Ptr.Score = "X", -1
	d.Inner.Tags[0] = "X"
	d.Inners[0].Tags[0] = "X"
	d.Map["z"] = []int{9}
	d.Flat[3] = "three"
}

// A copy is deep (writing into the original's memory leaves it as it
// was, every field, exported or not, and msgpack encodes it as the
// original was), keeps nil apart from empty, and copying again into the
// same destination reuses its memory.
func TestCopyIsDeep(t *testing.T) {
	cp, ok := copierFor(reflect.TypeFor[copyData]())
	require.True(t, ok)
	rnd := rand.New(rand.NewPCG(1, 1))
	var dst copyData
	for range 50 {
		src := sampleCopyData(rnd)
		before := decoded(t, src)
		cp(reflect.ValueOf(&dst).Elem(), reflect.ValueOf(src).Elem())

		require.Equal(t, before, decoded(t, &dst), "msgpack of the copy")
		require.Equal(t, src.private, dst.private, "an unexported field")
		require.Equal(t, src.Ptr.hid, dst.Ptr.hid, "an unexported field behind a pointer")
		require.NotNil(t, dst.Empty)
		require.Nil(t, dst.Nil)
		require.Nil(t, dst.NilPtr)
		require.Nil(t, dst.Arr[1])

		scribble(src)
		require.Equal(t, before, decoded(t, &dst), "the copy changed with the original")
		for _, f := range [][2][]int{{src.private, dst.private}, {src.Skipped, dst.Skipped}} {
			if len(f[0]) > 0 {
				require.NotEqual(t, f[0], f[1], "a field msgpack does not see is copied too")
			}
		}
	}

	// Copying a value of the same sizes again allocates nothing.
	src := sampleCopyData(rnd)
	cp(reflect.ValueOf(&dst).Elem(), reflect.ValueOf(src).Elem())
	small := copyData{Name: "s", Numbers: []int{1}, Blob: []byte("b"), Empty: []int{}, Ptr: &copyInner{Tags: []string{"t"}}}
	allocs := testing.AllocsPerRun(100, func() {
		cp(reflect.ValueOf(&dst).Elem(), reflect.ValueOf(&small).Elem())
	})
	require.Zero(t, allocs)
}

type copyNode struct {
	Next *copyNode
	V    int
}

type copyTree struct{ Kids []copyTree }

type copyMapOfPtrKeys struct{ M map[*int]int }

// A type that cannot be copied so is refused: it is then encoded while
// the machine is suspended, as before.
func TestCopyRefuses(t *testing.T) {
	for _, typ := range []reflect.Type{
		reflect.TypeFor[struct{ A any }](),
		reflect.TypeFor[struct{ C chan int }](),
		reflect.TypeFor[struct{ F func() }](),
		reflect.TypeFor[struct{ M map[string]any }](),
		reflect.TypeFor[copyNode](),
		reflect.TypeFor[copyTree](),
		reflect.TypeFor[copyMapOfPtrKeys](),
	} {
		_, ok := copierFor(typ)
		require.False(t, ok, "%v", typ)
	}
	for _, typ := range []reflect.Type{
		reflect.TypeFor[int](),
		reflect.TypeFor[string](),
		reflect.TypeFor[[4]int](),
		reflect.TypeFor[time.Time](),
		reflect.TypeFor[struct{ S, T copyInner }](), // one type twice is not recursion
	} {
		_, ok := copierFor(typ)
		require.True(t, ok, "%v", typ)
	}
}

// copyZone encodes itself, comparing its pointer with time.UTC's.
type copyZone struct{ Loc *time.Location }

func (z copyZone) EncodeMsgpack(e *msgpack.Encoder) error {
	if z.Loc == time.UTC {
		return e.EncodeString("Z")
	}
	return e.EncodeString(z.Loc.String())
}

// copyMode is one of a few modes, each a pointer: a copy of the pointer
// is none of them.
type copyMode struct{ name string }

var copyFast = &copyMode{"fast"}

type copyModed struct{ Mode *copyMode }

func (m copyModed) MarshalMsgpack() ([]byte, error) { return msgpack.Marshal(m.Mode == copyFast) }

// copyTags encodes itself and holds only a slice, which no method can
// compare but with nil.
type copyTags []string

func (t copyTags) MarshalMsgpack() ([]byte, error) { return msgpack.Marshal(strings.Join(t, ",")) }

// A type that encodes itself may compare pointers, whose identity a deep
// copy does not keep: netip.Addr (whose interned zone pointer a copy made
// anew, so that 10.0.0.1 encoded as ::ffff:10.0.0.1%), a zone compared
// with time.UTC, a pointer compared with a variable's. Interned pointers
// (unique.Handle, *time.Location) are shared; any other such type is not
// copied (it is encoded in Stage's window), and a type that encodes itself
// but holds no pointer is.
func TestCopyOwnEncodings(t *testing.T) {
	for _, v := range []any{
		&struct {
			A netip.Addr
			P netip.AddrPort
			N netip.Prefix
			S []netip.Addr
		}{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddrPort("[fe80::1%eth0]:80"), netip.MustParsePrefix("10.0.0.0/8"), []netip.Addr{netip.MustParseAddr("::1")}},
		&struct{ Z, L copyZone }{copyZone{time.UTC}, copyZone{time.FixedZone("z", 60)}},
		&struct{ Tags copyTags }{copyTags{"a", "b"}},
		&struct{ Zone *time.Location }{time.UTC},
	} {
		typ := reflect.TypeOf(v).Elem()
		cp, ok := copierFor(typ)
		require.True(t, ok, "%v", typ)
		dst := reflect.New(typ)
		cp(dst.Elem(), reflect.ValueOf(v).Elem())
		want, err := encode(v)
		require.NoError(t, err)
		got, err := encode(dst.Interface())
		require.NoError(t, err)
		require.Equal(t, want, got, "%v: msgpack of the copy", typ)
		require.Equal(t, reflect.ValueOf(v).Elem().Interface(), dst.Elem().Interface(), "%v: the copy", typ)
	}
	for _, typ := range []reflect.Type{
		reflect.TypeFor[copyModed](),
		reflect.TypeFor[struct{ M []copyModed }](),
		reflect.TypeFor[struct{ F *big.Float }](), // a pointer that encodes itself: its method may compare it
	} {
		_, ok := copierFor(typ)
		require.False(t, ok, "%v", typ)
	}
}

type copyRaceA struct {
	S []copyInner
	M map[string][]int
}

type copyRaceB struct{ P *copyRaceA }

// copierFor is called from many goroutines (each Machine's table builds
// its type's copier once), and the copiers it returns are used at once
// (each Stager on its own values): one answer per type, no race.
func TestCopierForConcurrent(t *testing.T) {
	types := []reflect.Type{reflect.TypeFor[copyRaceA](), reflect.TypeFor[copyRaceB](), reflect.TypeFor[[]copyRaceB]()}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				typ := types[(g+i)%len(types)]
				cp, ok := copierFor(typ)
				if !assert.True(t, ok, "%v", typ) { // not require: not the test's goroutine
					return
				}
				src, dst := reflect.New(typ).Elem(), reflect.New(typ).Elem()
				fill(src, rand.New(rand.NewPCG(uint64(g), uint64(i))))
				cp(dst, src)
				assert.Equal(t, dump(src), dump(dst))
			}
		})
	}
	wg.Wait()
}

// scratchData is a data type per T, for TestStagerScratchLetsGo.
type scratchData[T any] struct{ A []T }

// stageOne stages a new machine whose data is a scratchData[T] with st,
// and returns a weak pointer to the copy st made.
func stageOne[T any](t *testing.T, sys *actor.System, st *Stager) weak.Pointer[dataCopy[scratchData[T]]] {
	t.Helper()
	ctx := context.Background()
	code := Define("scratch", "v1", "on", scratchData[T]{A: make([]T, 1000)})
	ref, err := Start(ctx, sys, code)
	require.NoError(t, err)
	require.NoError(t, actor.Suspend(ctx, ref))
	require.NoError(t, st.Stage(ctx, ref))
	require.NoError(t, actor.Resume(ctx, ref))
	c, ok := st.copied.(*dataCopy[scratchData[T]])
	require.True(t, ok, "staged as a copy")
	st.Release()
	return weak.Make(c)
}

// A Stager keeps the copies of the last maxScratch types of data it
// staged, for their memory, and lets go of the others: the copy it
// evicted stayed in the array behind its list (scratch[1:]), alive.
func TestStagerScratchLetsGo(t *testing.T) {
	sys := actortest.NewSystem(t)
	st := NewStager()
	w0 := stageOne[int8](t, sys, st)
	w1 := stageOne[int16](t, sys, st)
	w2 := stageOne[int32](t, sys, st)
	w3 := stageOne[int64](t, sys, st)
	w4 := stageOne[uint8](t, sys, st)
	w5 := stageOne[uint16](t, sys, st)
	w6 := stageOne[uint32](t, sys, st)
	alive := func() []bool { // whether each copy is
		return []bool{w0.Value() != nil, w1.Value() != nil, w2.Value() != nil, w3.Value() != nil,
			w4.Value() != nil, w5.Value() != nil, w6.Value() != nil}
	}
	runtime.GC()
	runtime.GC()
	require.Equal(t, []bool{false, false, false, true, true, true, true}, alive(), "the last %d types' copies kept", maxScratch)
	runtime.KeepAlive(st)
}

// copyLevel is a level, the default one when it points at
// copyDefaultLevel: its IsZero, which msgpack asks for omitempty,
// compares pointers.
type copyLevel struct{ def *copyLevelDef }

type copyLevelDef struct{ Name string }

var copyDefaultLevel = &copyLevelDef{"default"}

func (l copyLevel) IsZero() bool { return l.def == nil || l.def == copyDefaultLevel }

// msgpack decides whether to write a field tagged omitempty with its
// type's IsZero, which may compare pointers, as an encoding may: a copy
// wrote a default level that the original left out. Such a type is not
// copied.
func TestCopyIsZero(t *testing.T) {
	type data struct {
		Level copyLevel `msgpack:",omitempty"`
		N     int
	}
	v := &data{Level: copyLevel{copyDefaultLevel}, N: 1}
	cp, ok := copierFor(reflect.TypeFor[data]())
	if ok {
		var dst data
		cp(reflect.ValueOf(&dst).Elem(), reflect.ValueOf(v).Elem())
		want, err := encode(v)
		require.NoError(t, err)
		got, err := encode(&dst)
		require.NoError(t, err)
		require.Equal(t, want, got, "msgpack of the copy")
	}
	require.False(t, ok)
	_, ok = copierFor(reflect.TypeFor[struct{ At []time.Time }]()) // IsZero, and no pointer but time's
	require.True(t, ok)
}
