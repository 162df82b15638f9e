package plugin

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/fsm"
	machine "github.com/hotline-go/hotline/internal/plugintest/machine"
	"github.com/hotline-go/hotline/internal/wire"
)

// loadCounter is a Code that counts its Loads, to see when the plugin
// server decodes a machine's data and when it reuses the instance the
// machine's last call left.
type loadCounter struct {
	fsm.Code
	loads int
}

func (c *loadCounter) Load(ctx context.Context, state string, data []byte) (fsm.Instance, error) {
	c.loads++
	return c.Code.Load(ctx, state, data)
}

func (c *loadCounter) DecodeEvent(ctx context.Context, version, name string, payload []byte) (any, error) {
	return c.Code.(fsm.EventDecoder).DecodeEvent(ctx, version, name, payload)
}

// memoHost plays the host for the plugin server: it keeps each machine's
// state and data and sends them with every call, as plugin.instance does.
type memoHost struct {
	t     *testing.T
	s     *server
	state map[string]string
	data  map[string][]byte
}

func newMemoHost(t *testing.T, codes ...fsm.Code) *memoHost {
	return &memoHost{t: t, s: newServer(codes), state: map[string]string{}, data: map[string][]byte{}}
}

// start makes key's machine with v1.
func (h *memoHost) start(key string) {
	h.t.Helper()
	call := wire.MachineCall{Version: "v1", Arg: key}
	res := h.do(key, wire.MethodNew, &call)
	require.Equal(h.t, wire.FailNone, res.Fail, res.Message)
}

// send sends ev to key's machine with the flags on, keeps what it returns
// (unless it failed) and returns the result.
func (h *memoHost) send(key string, ev any, flags ...string) wire.MachineResult {
	h.t.Helper()
	p, err := msgpack.Marshal(ev)
	require.NoError(h.t, err)
	call := wire.MachineCall{Version: "v1", State: h.state[key], Data: h.data[key], Kind: uint8(fsm.KindCall),
		Event: fsm.EventName(ev), Payload: p, Flags: flags}
	return h.do(key, wire.MethodHandle, &call)
}

func (h *memoHost) do(key, method string, call *wire.MachineCall) wire.MachineResult {
	h.t.Helper()
	out, err := h.s.handle(context.Background(), key, method, call.Append(nil))
	require.NoError(h.t, err)
	var res wire.MachineResult
	require.NoError(h.t, res.Decode(out))
	if res.Fail == wire.FailNone {
		h.state[key], h.data[key] = res.State, res.Data
	}
	return res
}

// reply returns the value of res's reply action.
func reply(t *testing.T, res wire.MachineResult) any {
	t.Helper()
	acts, err := decodeActions(res.Actions)
	require.NoError(t, err)
	for _, a := range acts {
		if a.Kind() == fsm.ActionReply {
			return a.Value()
		}
	}
	t.Fatalf("no reply in %v", acts)
	return nil
}

func TestMemoReusesTheInstanceOfTheLastCall(t *testing.T) {
	code := &loadCounter{Code: machine.V1()}
	h := newMemoHost(t, code)
	h.start("a")
	h.start("b")
	for i := 1; i <= 5; i++ {
		for _, key := range []string{"a", "b"} {
			res := h.send(key, machine.Pad{Note: "n"})
			require.Equal(t, wire.FailNone, res.Fail, res.Message)
			require.EqualValues(t, i, reply(t, res))
		}
	}
	require.Zero(t, code.loads, "every call carried what the last one returned: no decode")

	// The same data as the instance's, in the same state, is a hit too:
	// a data the host got elsewhere (another instance) is compared by its bytes.
	var d machine.Data1
	require.NoError(t, msgpack.Unmarshal(h.data["a"], &d))
	require.Equal(t, 5, d.N)

	// A host that sends other data (a redelivery after a restart, a
	// machine moved meanwhile) gets its own data decoded.
	old := h.data["a"]
	h.send("a", machine.Pad{})
	h.data["a"] = old // as if the answer was lost and the event redelivered
	res := h.send("a", machine.Pad{})
	require.EqualValues(t, 6, reply(t, res), "the redelivered event counts from the host's data")
	require.Equal(t, 1, code.loads)
}

func TestMemoFailedCallLeavesNoInstance(t *testing.T) {
	// A handler that changes the data in place and then panics: the
	// instance must not serve the next call, whose data is the host's.
	m := fsm.Define("counter", "v1", "idle", machine.Data1{})
	fsm.OnAny(m, func(p machine.Pad, d machine.Data1) fsm.Result[machine.Data1] {
		if p.Note == "spoil" {
			d.Blob[0] = 'X'
			panic("spoilt")
		}
		if p.Blob != nil {
			d.Blob = p.Blob
		}
		return fsm.Keep(d, fsm.Reply(string(d.Blob)))
	})
	code := &loadCounter{Code: m}
	h := newMemoHost(t, code)
	h.start("a")
	require.Equal(t, "abc", reply(t, h.send("a", machine.Pad{Blob: []byte("abc")})))
	require.Panics(t, func() { h.send("a", machine.Pad{Note: "spoil"}) })
	require.Equal(t, "abc", reply(t, h.send("a", machine.Pad{})), "the spoilt instance was reused")
	require.Equal(t, 1, code.loads)

	// An event no handler takes fails too: the next call decodes again.
	res := h.send("a", machine.Get{})
	require.Equal(t, wire.FailUnknownEvent, res.Fail)
	require.Equal(t, "abc", reply(t, h.send("a", machine.Pad{})))
	require.Equal(t, 2, code.loads)
}

func TestMemoInstanceForgetsFlags(t *testing.T) {
	code := &loadCounter{Code: machine.V1()}
	h := newMemoHost(t, code)
	h.start("a")
	require.Equal(t, true, reply(t, h.send("a", machine.Flag{Name: "big"}, "big")))
	require.Equal(t, false, reply(t, h.send("a", machine.Flag{Name: "big"})), "a flag the host no longer sends is off")
	require.Equal(t, true, reply(t, h.send("a", machine.Flag{Name: "big"}, "big")))
	require.Zero(t, code.loads)
}

func TestMemoBudget(t *testing.T) {
	m := newMemo(3 * (2*10 + 256))
	data := func(i int) []byte { return fmt.Appendf(nil, "data-%05d", i) } // 10 bytes
	for i := range 3 {
		m.put(fmt.Sprint(i), "v1", "s", data(i), stubInstance(i), false)
	}
	require.Equal(t, 3, m.len())
	// "0" is used again: "1" is now the least recently used.
	in, _ := m.take("0", "v1", "s", data(0))
	require.Equal(t, stubInstance(0), in)
	m.put("0", "v1", "s", data(0), in, false)
	m.put("3", "v1", "s", data(3), stubInstance(3), false)
	require.Equal(t, 3, m.len())
	in, _ = m.take("1", "v1", "s", data(1))
	require.Nil(t, in, "the least recently used entry was pushed out")
	for _, k := range []int{0, 2, 3} {
		in, _ := m.take(fmt.Sprint(k), "v1", "s", data(k))
		require.Equal(t, stubInstance(k), in)
	}
	require.Zero(t, m.len())
	require.Zero(t, m.cost)

	// A mismatch of version, state or data misses, and drops the entry.
	for _, miss := range []struct{ version, state, data string }{{"v2", "s", "d"}, {"v1", "t", "d"}, {"v1", "s", "e"}} {
		m.put("k", "v1", "s", []byte("d"), stubInstance(1), false)
		in, _ := m.take("k", miss.version, miss.state, []byte(miss.data))
		require.Nil(t, in, "%+v", miss)
		require.Zero(t, m.len())
	}

	// An entry bigger than the whole budget is not kept.
	m.put("big", "v1", "s", make([]byte, m.budget), stubInstance(1), false)
	require.Zero(t, m.len())
}

// stubInstance is an fsm.Instance told apart by its number.
type stubInstance int

func (stubInstance) State() string                                  { return "s" }
func (stubInstance) Handle(fsm.Event) (string, []fsm.Action, error) { return "s", nil, nil }
func (stubInstance) Enter(string) ([]fsm.Action, error)             { return nil, nil }
func (stubInstance) Encode() ([]byte, error)                        { return nil, nil }
