package fsm_test

import (
	"context"
	"testing"

	"github.com/hotline-go/hotline/fsm"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// The decoders of this package, fed anything: an error or a value, never a
// panic. Run one with `go test -fuzz FuzzUpgrade ./fsm/`.

func seedSnapshots(f *testing.F) {
	f.Helper()
	for _, d := range []PhoneV1{{}, {Digits: []int{1, 2, 3}, In: 10, Out: 20, Calls: 1}, {Digits: []int{12}}} {
		b, err := msgpack.Marshal(d)
		require.NoError(f, err)
		f.Add("in_progress", b)
		f.Add("off", b[:len(b)/2])
	}
	f.Add("", []byte{})
	f.Add("dialing", []byte{0xc1})
	f.Add("dialing", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}) // an array of 2³²-1 elements
}

func FuzzUpgrade(f *testing.F) {
	seedSnapshots(f)
	v2 := phoneV2()
	f.Fuzz(func(t *testing.T, state string, data []byte) {
		ctx := context.Background()
		in, err := v2.Upgrade(ctx, "v1", state, data)
		if err != nil {
			return
		}
		// What UPGRADE accepted is v2 data: it encodes, and loads back.
		b, err := in.Encode()
		require.NoError(t, err)
		back, err := v2.Load(ctx, in.State(), b)
		require.NoError(t, err)
		b2, err := back.Encode()
		require.NoError(t, err)
		require.Equal(t, b, b2)
	})
}

func FuzzLoad(f *testing.F) {
	seedSnapshots(f)
	v1 := phoneV1()
	f.Fuzz(func(t *testing.T, state string, data []byte) {
		ctx := context.Background()
		in, err := v1.Load(ctx, state, data)
		if err != nil {
			require.ErrorIs(t, err, fsm.ErrBadData)
			return
		}
		b, err := in.Encode()
		require.NoError(t, err)
		_, err = v1.Load(ctx, state, b)
		require.NoError(t, err)
	})
}

// rawKey is a KeyPressed event whose msgpack is whatever the fuzzer says.
type rawKey []byte

func (rawKey) EventName() string { return "KeyPressed" }

func (k rawKey) EncodeMsgpack(enc *msgpack.Encoder) error {
	return enc.Encode(msgpack.RawMessage(k))
}

func FuzzConvertEvent(f *testing.F) {
	for _, k := range []any{KeyPressed{Digit: 3}, Key{Key: "4"}, map[string]any{"Digit": "x"}} {
		b, err := msgpack.Marshal(k)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte{0x93})
	v1, v2 := phoneV1(), phoneV2()
	f.Fuzz(func(t *testing.T, raw []byte) {
		ctx := context.Background()
		for _, code := range []fsm.Code{v1, v2} { // by decoding, and by UpgradeEvent
			ev, err := code.ConvertEvent(ctx, fsm.Event{Payload: rawKey(raw)})
			if err != nil {
				require.ErrorIs(t, err, fsm.ErrBadEvent)
				continue
			}
			switch ev.Payload.(type) {
			case KeyPressed, Key:
			default:
				t.Fatalf("%s converted to %T", code.Version(), ev.Payload)
			}
		}
	})
}

// FuzzDecodeEvent: DecodeEvent, which a machine restored from an Image in
// another process uses, decodes or refuses any payload under any name and
// version, never panics; what it decodes is of the handler's type.
func FuzzDecodeEvent(f *testing.F) {
	for _, ev := range []any{Note{N: 3}, Hold{N: 1}, Go{To: "busy"}} {
		b, err := msgpack.Marshal(ev)
		require.NoError(f, err)
		f.Add("v1", fsm.EventName(ev), b)
	}
	f.Add("v0", "Note", []byte{0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Add("v1", "nil", []byte{0xc0})
	f.Add("v1", "Nope", []byte{0x01})
	j := journal("v1")
	f.Fuzz(func(t *testing.T, from, name string, payload []byte) {
		v, err := j.DecodeEvent(context.Background(), from, name, payload)
		if err != nil {
			return
		}
		switch name {
		case "nil":
			require.Nil(t, v)
		case "Note":
			require.IsType(t, Note{}, v)
		case "Hold":
			require.IsType(t, Hold{}, v)
		case "Go":
			require.IsType(t, Go{}, v)
		case "Arm":
			require.IsType(t, Arm{}, v)
		default:
			t.Fatalf("decoded an event %q it has no handler for: %v", name, v)
		}
	})
}
