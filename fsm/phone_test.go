package fsm_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// The phone of DESIGN.md, in two versions, for the tests of this package.
// States: off, dialing, connecting, in_progress (v2: talking),
// disconnecting.

// Events. Clients keep sending these v1 types after v2 is out.
type (
	KeyPressed    struct{ Digit int }
	AudioReceived struct{ Bytes int }
	AudioSent     struct{ Bytes int }
	Answered      struct{}
	Hangup        struct{}
	GiveUp        struct{} // a state timeout's event
	Cleared       struct{} // a state timeout's event
	GetStatus     struct{} // a call
	Explode       struct{} // a handler that panics
)

// PhoneV1 is v1's data.
type PhoneV1 struct {
	Digits []int
	In     int
	Out    int
	Calls  int
}

const (
	dialTimeout    = 10 * time.Second
	connectTimeout = 30 * time.Second
	clearTimeout   = time.Second
)

func phoneV1() *fsm.Machine[PhoneV1] {
	m := fsm.Define("phone", "v1", "off", PhoneV1{})
	fsm.On(m, "off", func(k KeyPressed, p PhoneV1) fsm.Result[PhoneV1] {
		p.Digits = []int{k.Digit}
		return fsm.Next("dialing", p, fsm.StateTimeout(dialTimeout, GiveUp{}))
	})
	fsm.On(m, "dialing", func(k KeyPressed, p PhoneV1) fsm.Result[PhoneV1] {
		p.Digits = append(p.Digits[:len(p.Digits):len(p.Digits)], k.Digit)
		if len(p.Digits) == 3 {
			return fsm.Next("connecting", p, fsm.StateTimeout(connectTimeout, GiveUp{}))
		}
		return fsm.Keep(p, fsm.StateTimeout(dialTimeout, GiveUp{}))
	})
	fsm.On(m, "dialing", func(_ GiveUp, p PhoneV1) fsm.Result[PhoneV1] { return fsm.Next("off", PhoneV1{Calls: p.Calls}) })
	fsm.On(m, "connecting", func(_ GiveUp, p PhoneV1) fsm.Result[PhoneV1] {
		return fsm.Next("off", PhoneV1{Calls: p.Calls})
	})
	fsm.On(m, "connecting", func(_ Answered, p PhoneV1) fsm.Result[PhoneV1] {
		p.Calls++
		return fsm.Next("in_progress", p)
	})
	// Early media waits until the call is answered.
	fsm.On(m, "connecting", func(_ AudioReceived, p PhoneV1) fsm.Result[PhoneV1] { return fsm.Keep(p, fsm.Postpone()) })
	fsm.On(m, "in_progress", func(a AudioReceived, p PhoneV1) fsm.Result[PhoneV1] {
		p.In += a.Bytes
		return fsm.Keep(p)
	})
	fsm.On(m, "in_progress", func(a AudioSent, p PhoneV1) fsm.Result[PhoneV1] {
		p.Out += a.Bytes
		return fsm.Keep(p)
	})
	fsm.OnAny(m, func(_ Hangup, p PhoneV1) fsm.Result[PhoneV1] {
		return fsm.Next("disconnecting", p, fsm.StateTimeout(clearTimeout, Cleared{}))
	})
	fsm.On(m, "off", func(_ Hangup, p PhoneV1) fsm.Result[PhoneV1] { return fsm.Keep(p) })
	fsm.On(m, "disconnecting", func(_ Hangup, p PhoneV1) fsm.Result[PhoneV1] { return fsm.Keep(p) })
	fsm.On(m, "disconnecting", func(_ Cleared, p PhoneV1) fsm.Result[PhoneV1] {
		return fsm.Next("off", PhoneV1{Calls: p.Calls})
	})
	fsm.OnAny(m, func(_ GetStatus, p PhoneV1) fsm.Result[PhoneV1] {
		return fsm.Keep(p, fsm.Reply(fmt.Sprintf("v1 %v in=%d out=%d calls=%d", p.Digits, p.In, p.Out, p.Calls)))
	})
	fsm.OnAny(m, func(_ Explode, p PhoneV1) fsm.Result[PhoneV1] { panic("exploded") })
	return m
}

// PhoneV2 is v2's data: the number is a string, fields are renamed.
type PhoneV2 struct {
	Number   string
	BytesIn  int
	BytesOut int
	Calls    int
}

// Key is v2's key press: a key, not a digit. It keeps the event's name, so
// that v1's KeyPressed events convert to it.
type Key struct{ Key string }

func (Key) EventName() string { return "KeyPressed" }

func phoneV2() *fsm.Machine[PhoneV2] {
	m := fsm.Define("phone", "v2", "off", PhoneV2{})
	fsm.On(m, "off", func(k Key, p PhoneV2) fsm.Result[PhoneV2] {
		p.Number = k.Key
		return fsm.Next("dialing", p, fsm.StateTimeout(dialTimeout, GiveUp{}))
	})
	fsm.On(m, "dialing", func(k Key, p PhoneV2) fsm.Result[PhoneV2] {
		p.Number += k.Key
		if len(p.Number) == 3 {
			return fsm.Next("connecting", p, fsm.StateTimeout(connectTimeout, GiveUp{}))
		}
		return fsm.Keep(p, fsm.StateTimeout(dialTimeout, GiveUp{}))
	})
	fsm.On(m, "dialing", func(_ GiveUp, p PhoneV2) fsm.Result[PhoneV2] { return fsm.Next("off", PhoneV2{Calls: p.Calls}) })
	fsm.On(m, "connecting", func(_ GiveUp, p PhoneV2) fsm.Result[PhoneV2] {
		return fsm.Next("off", PhoneV2{Calls: p.Calls})
	})
	fsm.On(m, "connecting", func(_ Answered, p PhoneV2) fsm.Result[PhoneV2] {
		p.Calls++
		return fsm.Next("talking", p)
	})
	fsm.On(m, "connecting", func(_ AudioReceived, p PhoneV2) fsm.Result[PhoneV2] { return fsm.Keep(p, fsm.Postpone()) })
	fsm.On(m, "talking", func(a AudioReceived, p PhoneV2) fsm.Result[PhoneV2] {
		p.BytesIn += a.Bytes
		return fsm.Keep(p)
	})
	fsm.On(m, "talking", func(a AudioSent, p PhoneV2) fsm.Result[PhoneV2] {
		p.BytesOut += a.Bytes
		return fsm.Keep(p)
	})
	fsm.OnAny(m, func(_ Hangup, p PhoneV2) fsm.Result[PhoneV2] {
		return fsm.Next("disconnecting", p, fsm.StateTimeout(clearTimeout, Cleared{}))
	})
	fsm.On(m, "off", func(_ Hangup, p PhoneV2) fsm.Result[PhoneV2] { return fsm.Keep(p) })
	fsm.On(m, "disconnecting", func(_ Hangup, p PhoneV2) fsm.Result[PhoneV2] { return fsm.Keep(p) })
	fsm.On(m, "disconnecting", func(_ Cleared, p PhoneV2) fsm.Result[PhoneV2] {
		return fsm.Next("off", PhoneV2{Calls: p.Calls})
	})
	fsm.OnAny(m, func(_ GetStatus, p PhoneV2) fsm.Result[PhoneV2] {
		return fsm.Keep(p, fsm.Reply(fmt.Sprintf("v2 %q in=%d out=%d calls=%d", p.Number, p.BytesIn, p.BytesOut, p.Calls)))
	})

	// v1's KeyPressed{Digit} becomes Key{Key}.
	fsm.UpgradeEvent(m, func(raw msgpack.RawMessage) (Key, error) {
		var k KeyPressed
		if err := msgpack.Unmarshal(raw, &k); err != nil {
			return Key{}, err
		}
		return Key{Key: strconv.Itoa(k.Digit)}, nil
	})
	// UPGRADE: v1's data and states to v2's.
	m.OnUpgrade(func(from, state string, data msgpack.RawMessage) (string, PhoneV2, error) {
		if from != "v1" {
			return "", PhoneV2{}, fmt.Errorf("no upgrade from %s", from)
		}
		var old PhoneV1
		if err := msgpack.Unmarshal(data, &old); err != nil {
			return "", PhoneV2{}, err
		}
		var number strings.Builder
		for _, d := range old.Digits {
			if d < 0 || d > 9 {
				return "", PhoneV2{}, fmt.Errorf("digit %d out of range", d)
			}
			number.WriteString(strconv.Itoa(d))
		}
		if state == "in_progress" {
			state = "talking"
		}
		return state, PhoneV2{Number: number.String(), BytesIn: old.In, BytesOut: old.Out, Calls: old.Calls}, nil
	})
	// And back.
	m.OnDowngrade(func(to, state string, p PhoneV2) (string, any, error) {
		if to != "v1" {
			return "", nil, fmt.Errorf("no downgrade to %s", to)
		}
		old := PhoneV1{In: p.BytesIn, Out: p.BytesOut, Calls: p.Calls}
		for _, r := range p.Number {
			old.Digits = append(old.Digits, int(r-'0'))
		}
		if state == "talking" {
			state = "in_progress"
		}
		return state, old, nil
	})
	return m
}

func start(t *testing.T, sys *actor.System, code fsm.Code, opts ...fsm.StartOption) actor.Ref {
	t.Helper()
	ref, err := fsm.Start(context.Background(), sys, code, opts...)
	require.NoError(t, err)
	return ref
}

func cast(t *testing.T, ref actor.Ref, evs ...any) {
	t.Helper()
	for _, ev := range evs {
		require.NoError(t, fsm.Cast(ref, ev))
	}
}

func status(t *testing.T, ref actor.Ref) string {
	t.Helper()
	v, err := fsm.Call(context.Background(), ref, GetStatus{})
	require.NoError(t, err)
	return v.(string)
}

func info(t *testing.T, ref actor.Ref) fsm.Info {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, fsm.Sync(ctx, ref))
	inf, err := fsm.Inspect(ctx, ref)
	require.NoError(t, err)
	return inf
}

// data decodes a machine's data.
func data[D any](t *testing.T, ref actor.Ref) D {
	t.Helper()
	var d D
	require.NoError(t, msgpack.Unmarshal(info(t, ref).Data, &d))
	return d
}

var errTest = errors.New("test error")
