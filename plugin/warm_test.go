package plugin

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/fsm"
	tm "github.com/hotline-go/hotline/internal/plugintest/machine"
	"github.com/hotline-go/hotline/internal/wire"
)

// machineV1 is the test machine's v1, under a name that does not clash
// with the Machine method.
type machineV1 = fsm.Machine[tm.Data1]

// countingCode is a machine's code that counts its Loads.
type countingCode struct {
	*machineV1
	loads atomic.Int32
}

func (c *countingCode) Load(ctx context.Context, state string, data []byte) (fsm.Instance, error) {
	c.loads.Add(1)
	return c.machineV1.Load(ctx, state, data)
}

// event is what the host sends for one handle call of ev, and gets back.
func (s *server) event(t *testing.T, key, version, state string, data []byte, ev any) wire.MachineResult {
	t.Helper()
	p, err := marshal(ev)
	require.NoError(t, err)
	call := wire.MachineCall{Version: version, State: state, Data: data, Kind: uint8(fsm.KindCall),
		Event: fsm.EventName(ev), Payload: p}
	out, err := s.handle(t.Context(), key, wire.MethodHandle, call.Append(nil))
	require.NoError(t, err)
	var res wire.MachineResult
	require.NoError(t, res.Decode(out))
	return res
}

func newCounting(t *testing.T) (*server, *countingCode, wire.MachineResult) {
	t.Helper()
	c := &countingCode{machineV1: tm.V1()}
	s := newServer([]fsm.Code{c})
	out, err := s.handle(t.Context(), "m", wire.MethodNew, (&wire.MachineCall{Version: "v1", Arg: "m"}).Append(nil))
	require.NoError(t, err)
	var res wire.MachineResult
	require.NoError(t, res.Decode(out))
	return s, c, res
}

func TestWarmInstanceSkipsTheDecode(t *testing.T) {
	s, c, res := newCounting(t)
	for i := 1; i <= 3; i++ {
		res = s.event(t, "m", "v1", res.State, res.Data, tm.Pad{Note: "x"})
		require.Equal(t, wire.FailNone, res.Fail, res.Message)
	}
	require.Zero(t, c.loads.Load(), "the data each event returned came back unchanged: no Load")

	// The same data under another key, or the state the host kept that is
	// not the one the plugin left: decoded.
	s.event(t, "other", "v1", res.State, res.Data, tm.Pad{})
	require.EqualValues(t, 1, c.loads.Load())
	s.event(t, "m", "v1", "armed", res.Data, tm.Get{})
	require.EqualValues(t, 2, c.loads.Load())
}

// The host's data is older than what the plugin left (a caller gave up on
// a call whose answer the host never took; a redelivery): the plugin
// decodes the host's bytes, and the machine goes on from them.
func TestWarmInstanceNotUsedForOtherData(t *testing.T) {
	s, c, res := newCounting(t)
	before := s.event(t, "m", "v1", res.State, res.Data, tm.Pad{Blob: []byte("b")})
	after := s.event(t, "m", "v1", before.State, before.Data, tm.Pad{}) // N 2, kept
	require.Zero(t, c.loads.Load())

	again := s.event(t, "m", "v1", before.State, before.Data, tm.Pad{}) // the host never took after
	require.EqualValues(t, 1, c.loads.Load())
	require.Equal(t, after.Data, again.Data, "the same event on the same data gives the same data")
	require.Equal(t, after.Actions, again.Actions)
}

// An event whose handler fails or panics may have changed the instance
// half-way: nothing is kept, and the next event decodes the host's data.
func TestWarmInstanceDroppedOnFailure(t *testing.T) {
	s, c, res := newCounting(t)
	res = s.event(t, "m", "v1", res.State, res.Data, tm.Pad{Note: "x"})

	failed := s.event(t, "m", "v1", res.State, res.Data, struct{ Unknown int }{})
	require.Equal(t, wire.FailUnknownEvent, failed.Fail)
	s.event(t, "m", "v1", res.State, res.Data, tm.Pad{})
	require.EqualValues(t, 1, c.loads.Load(), "after an error")

	p, err := marshal(tm.Boom{})
	require.NoError(t, err)
	call := wire.MachineCall{Version: "v1", State: res.State, Data: res.Data, Kind: uint8(fsm.KindCall), Event: fsm.EventName(tm.Boom{}), Payload: p}
	require.PanicsWithValue(t, "boom", func() { _, _ = s.handle(t.Context(), "m", wire.MethodHandle, call.Append(nil)) })
	require.Zero(t, s.warm.len())
	s.event(t, "m", "v1", res.State, res.Data, tm.Pad{})
	require.EqualValues(t, 3, c.loads.Load(), "after a panic")
}

// A warm instance belongs to one version: another version's code with the
// same key and bytes decodes them.
func TestWarmInstanceOfOneVersion(t *testing.T) {
	w := newWarmCache(8, 1<<20)
	v1, v2 := tm.V1(), tm.V2()
	in, err := v1.New(t.Context(), "m")
	require.NoError(t, err)
	w.put("m", v1, in, "idle", []byte{0x80})
	require.Nil(t, w.take("m", v2, "idle", []byte{0x80}))
	require.Zero(t, w.len(), "a miss drops the entry")
	w.put("m", v1, in, "idle", []byte{0x80})
	require.Same(t, in, w.take("m", v1, "idle", []byte{0x80}))
	require.Nil(t, w.take("m", v1, "idle", []byte{0x80}), "taken: its user owns it")
}

func TestWarmCacheBounds(t *testing.T) {
	v1 := tm.V1()
	in, err := v1.New(t.Context(), "m")
	require.NoError(t, err)
	w := newWarmCache(3, 1600)
	for _, k := range []string{"a", "b", "c", "d"} {
		w.put(k, v1, in, "idle", make([]byte, 10))
	}
	require.Equal(t, 3, w.len(), "at most 3 entries")
	require.Equal(t, 30, w.bytes)

	w.put("big", v1, in, "idle", make([]byte, 101))
	require.Nil(t, w.take("big", v1, "idle", make([]byte, 101)), "over a sixteenth of the bytes: not kept")
	w = newWarmCache(100, 1600)
	for i := range 20 {
		w.put(strings.Repeat("k", i+1), v1, in, "idle", make([]byte, 100))
	}
	require.LessOrEqual(t, w.bytes, 1600)
	require.Equal(t, 16, w.len())
	w.put("k", v1, in, "idle", make([]byte, 50)) // replaces k's entry
	require.LessOrEqual(t, w.bytes, 1600)
}
