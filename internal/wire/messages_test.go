package wire_test

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/internal/wire"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func token() []byte {
	t := make([]byte, wire.TokenSize)
	for i := range t {
		t[i] = byte(i)
	}
	return t
}

// samples are the messages whose encodings testdata/ fixes. new returns an
// empty message of the same type to decode into.
var samples = []struct {
	name string
	msg  wire.Message
	new  func() wire.Message
}{
	{"hello", &wire.Hello{Protocol: 1, SocketDir: "/tmp/hotline-1234", Conns: 4},
		func() wire.Message { return new(wire.Hello) }},
	{"welcome", &wire.Welcome{Protocol: 1, Machine: "phone", Versions: []string{"v1", "v2"},
		Socket: "/tmp/hotline-1234/ev-5678", Token: token()},
		func() wire.Message { return new(wire.Welcome) }},
	{"auth", &wire.Auth{Token: token(), Conn: 2},
		func() wire.Message { return new(wire.Auth) }},
	{"request", &wire.Request{ID: 7, Key: "m-42", Method: "event", Timeout: 5 * time.Second,
		Body: []byte{0x92, 0xa3, 'o', 'f', 'f', 0xc0}},
		func() wire.Message { return new(wire.Request) }},
	{"request-wide", &wire.Request{ID: 1 << 40, Key: strings.Repeat("k", 40), Method: "",
		Timeout: 0, Body: bytes.Repeat([]byte{0xab}, 300)},
		func() wire.Message { return new(wire.Request) }},
	{"response", &wire.Response{ID: 7, Status: wire.StatusOK, Body: []byte{0x92, 0xa2, 'o', 'n', 0x01}},
		func() wire.Message { return new(wire.Response) }},
	{"response-panic", &wire.Response{ID: 300, Status: wire.StatusPanic, Message: "boom",
		Stack: "goroutine 7 [running]:\n"},
		func() wire.Message { return new(wire.Response) }},
	{"machine-call", &wire.MachineCall{Version: "v2", State: "dialing", Data: []byte{0x81, 0xa1, 'n', 0x03},
		Kind: 1, Event: "KeyPressed", Payload: []byte{0x81, 0xa3, 'k', 'e', 'y', 0xa1, '5'}},
		func() wire.Message { return new(wire.MachineCall) }},
	{"machine-call-flags", &wire.MachineCall{Version: "v2", State: "dialing", Data: []byte{0x81, 0xa1, 'n', 0x03},
		Kind: 0, Event: "KeyPressed", Payload: []byte{0xc0}, Flags: []string{"fast-dial", "new-tone"}},
		func() wire.Message { return new(wire.MachineCall) }},
	{"machine-result", &wire.MachineResult{State: "connecting", Data: []byte{0x81, 0xa1, 'n', 0x04},
		Actions: []wire.MachineAction{
			{Kind: 1, Value: []byte{0xa2, 'o', 'k'}},
			{Kind: 8, Name: "ring", After: 30 * time.Second, Event: "Ring", Value: []byte{0xc0}},
		}},
		func() wire.Message { return new(wire.MachineResult) }},
	{"machine-result-fail", &wire.MachineResult{State: "off", Fail: wire.FailUnknownEvent,
		Message: "fsm: no handler for event Hangup"},
		func() wire.Message { return new(wire.MachineResult) }},
}

// formatHex writes b as hex, 16 bytes a line.
func formatHex(b []byte) string {
	var sb strings.Builder
	for i := 0; i < len(b); i += 16 {
		line := b[i:min(i+16, len(b))]
		for j, c := range line {
			if j > 0 {
				sb.WriteByte(' ')
			}
			sb.WriteString(hex.EncodeToString([]byte{c}))
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}

func parseHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	require.NoError(t, err)
	return b
}

// TestGolden fixes the encoding of every message: if this fails, the format
// changed, and so must wire.ProtocolVersion (then rerun with -update).
func TestGolden(t *testing.T) {
	for _, s := range samples {
		t.Run(s.name, func(t *testing.T) {
			got, err := wire.AppendFrame(nil, s.msg)
			require.NoError(t, err)
			path := filepath.Join("testdata", s.name+".hex")
			if *update {
				require.NoError(t, os.WriteFile(path, []byte(formatHex(got)), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, formatHex(parseHex(t, string(want))), formatHex(got),
				"the encoding of %s changed: bump wire.ProtocolVersion and rerun with -update", s.name)
		})
	}
}

func TestProtocolVersion(t *testing.T) {
	// Changing the goldens without changing this is the mistake the golden
	// test is there to catch.
	require.Equal(t, 3, wire.ProtocolVersion)
}

func TestRoundTrip(t *testing.T) {
	for _, s := range samples {
		t.Run(s.name, func(t *testing.T) {
			b := s.msg.Append(nil)
			m := s.new()
			require.NoError(t, m.Decode(b))
			require.Equal(t, s.msg, m)
			require.Equal(t, b, m.Append(nil))
		})
	}
}

// TestLibraryReads checks that the bytes are plain msgpack: the msgpack
// library reads every message as an array of the same values.
func TestLibraryReads(t *testing.T) {
	req := &wire.Request{ID: 1 << 33, Key: "machine-1", Method: "event", Timeout: time.Second, Body: []byte("data")}
	var got []any
	require.NoError(t, msgpack.Unmarshal(req.Append(nil), &got))
	require.Equal(t, []any{int8(4), uint64(1 << 33), "machine-1", "event", uint32(1e9), []byte("data")}, got)

	w := &wire.Welcome{Protocol: 1, Machine: "m", Versions: []string{"v1"}, Socket: "/s", Token: []byte{1}}
	var got2 []any
	require.NoError(t, msgpack.Unmarshal(w.Append(nil), &got2))
	require.Equal(t, []any{int8(2), int8(1), "m", []any{"v1"}, "/s", []byte{1}}, got2)
}

// TestReadsLibrary checks that the decoders read what the msgpack library
// writes, in the forms it chooses (signed integers, nil for empty bytes).
func TestReadsLibrary(t *testing.T) {
	enc := func(v ...any) []byte {
		b, err := msgpack.Marshal(v)
		require.NoError(t, err)
		return b
	}
	var req wire.Request
	require.NoError(t, req.Decode(enc(4, int64(9), "k", "m", int32(250), []byte(nil))))
	require.Equal(t, wire.Request{ID: 9, Key: "k", Method: "m", Timeout: 250}, req)

	var resp wire.Response
	require.NoError(t, resp.Decode(enc(uint8(5), uint64(1<<40), 1, []byte("x"), "bad", nil)))
	require.Equal(t, wire.Response{ID: 1 << 40, Status: wire.StatusError, Body: []byte("x"), Message: "bad"}, resp)
}

func TestDecodeErrors(t *testing.T) {
	valid := (&wire.Request{ID: 1, Key: "k", Method: "m", Body: []byte("b")}).Append(nil)
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "header at offset 0: 1 bytes needed, 0 left"},
		{"not an array", []byte{0xa1, 'x'}, "want an array, have tag 0xa1"},
		{"short array", []byte{0x95, 4, 1, 0xa0, 0xa0, 0}, "want an array of 6, have 5"},
		{"wrong type", (&wire.Response{ID: 1}).Append(nil), "want Request (4), have 5"},
		{"truncated", valid[:len(valid)-1], "body at offset 10: 1 bytes needed, 0 left"},
		{"trailing", append(append([]byte{}, valid...), 0), "1 trailing bytes"},
		{"negative id", []byte{0x96, 4, 0xd0, 0xff, 0xa0, 0xa0, 0, 0xc4, 0}, "id at offset 4: negative integer"},
		{"id not int", []byte{0x96, 4, 0xa1, 'x', 0xa0, 0xa0, 0, 0xc4, 0}, "want an unsigned integer, have tag 0xa1"},
		{"key not str", []byte{0x96, 4, 1, 0x01, 0xa0, 0, 0xc4, 0}, "key at offset 3: want a str or bin, have tag 0x01"},
		{"huge timeout", []byte{0x96, 4, 1, 0xa0, 0xa0, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc4, 0}, "overflows a duration"},
		{"reserved tag", []byte{0xc1}, "want an array, have tag 0xc1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r wire.Request
			err := r.Decode(tt.in)
			require.ErrorIs(t, err, wire.ErrMalformed)
			require.ErrorContains(t, err, tt.want)
		})
	}

	t.Run("unknown status", func(t *testing.T) {
		var r wire.Response
		err := r.Decode([]byte{0x96, 5, 1, 3, 0xc4, 0, 0xa0, 0xa0})
		require.ErrorIs(t, err, wire.ErrMalformed)
		require.ErrorContains(t, err, "unknown status 3")
	})
	t.Run("too many versions", func(t *testing.T) {
		var w wire.Welcome
		err := w.Decode([]byte{0x96, 2, 1, 0xa0, 0xdd, 0xff, 0xff, 0xff, 0xff})
		require.ErrorIs(t, err, wire.ErrMalformed)
	})
}

func TestTypeAndStatusNames(t *testing.T) {
	require.Equal(t, "Request", wire.TypeRequest.String())
	require.Equal(t, "Type(9)", wire.Type(9).String())
	require.Equal(t, "panic", wire.StatusPanic.String())
	require.Equal(t, "Status(7)", wire.Status(7).String())
}

// TestStringsIntern: a Strings returns the string it holds for bytes it
// has seen, so that decoding the same key twice allocates it once, and
// holds no more than its bound.
func TestStringsIntern(t *testing.T) {
	var strs wire.Strings
	b := (&wire.Request{ID: 1, Key: "machine-0001", Method: "fsm.handle", Body: []byte{1}}).Append(nil)
	var r wire.Request
	require.NoError(t, r.DecodeWith(b, &strs))
	allocs := testing.AllocsPerRun(100, func() {
		if err := r.DecodeWith(b, &strs); err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, allocs, "key and method come from the Strings")
	require.Equal(t, wire.Request{ID: 1, Key: "machine-0001", Method: "fsm.handle", Body: []byte{1}}, r)

	// Past its bound, a Strings still decodes: new strings are allocated.
	for i := range 5000 {
		key := fmt.Sprintf("k%d", i)
		b := (&wire.Request{ID: 2, Key: key, Method: "m"}).Append(nil)
		require.NoError(t, r.DecodeWith(b, &strs))
		require.Equal(t, key, r.Key)
	}
}

// TestConnsBounds: a Hello must ask for 1 to MaxConns connections, and an
// Auth's index must be below MaxConns; anything else is malformed and
// named.
func TestConnsBounds(t *testing.T) {
	for _, n := range []int{0, wire.MaxConns + 1} {
		b := (&wire.Hello{Protocol: 3, SocketDir: "/d", Conns: n}).Append(nil)
		err := new(wire.Hello).Decode(b)
		require.ErrorIs(t, err, wire.ErrMalformed)
		require.ErrorContains(t, err, fmt.Sprintf("Hello: conns at offset %d: %d connections, want 1 to %d", len(b), n, wire.MaxConns))
	}
	require.NoError(t, new(wire.Hello).Decode((&wire.Hello{Protocol: 3, SocketDir: "/d", Conns: wire.MaxConns}).Append(nil)))

	b := (&wire.Auth{Token: token(), Conn: wire.MaxConns}).Append(nil)
	err := new(wire.Auth).Decode(b)
	require.ErrorIs(t, err, wire.ErrMalformed)
	require.ErrorContains(t, err, fmt.Sprintf("Auth: conn at offset %d: index %d, want below %d", len(b), wire.MaxConns, wire.MaxConns))
}
