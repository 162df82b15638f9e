package handoff_test

import (
	"bytes"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/internal/handoff"
)

// randomState makes a State whose strings, byte slices, maps and slices
// cross every size class of msgpack's headers, nil and empty alike.
func randomState(r *rand.Rand) handoff.State {
	sizes := []int{0, 1, 31, 32, 255, 256, 65535, 65536}
	size := func() int { // the large ones seldom
		if r.IntN(200) == 0 {
			return sizes[len(sizes)-2+r.IntN(2)]
		}
		return sizes[r.IntN(len(sizes)-2)]
	}
	str := func() string { return strings.Repeat("s", size()+r.IntN(3)) }
	bin := func() []byte {
		switch r.IntN(4) {
		case 0:
			return nil
		case 1:
			return []byte{}
		}
		b := make([]byte, size())
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	count := func() int { return []int{0, 1, 2, 1, 2, 15, 16, 17}[r.IntN(8)] }
	event := func() handoff.Event { return handoff.Event{Kind: uint8(r.Uint32()), Name: str(), Payload: bin()} }
	events := func() []handoff.Event {
		if r.IntN(3) == 0 {
			return nil
		}
		es := make([]handoff.Event, count())
		for i := range es {
			es[i] = event()
		}
		return es
	}
	var s handoff.State
	if r.IntN(5) > 0 {
		s.Machines = make([]handoff.Machine, count())
	}
	for i := range s.Machines {
		m := handoff.Machine{Key: str() + strconv.Itoa(i), Machine: str(), Version: str(), ID: str(), State: str(), Data: bin(),
			Postponed: events(), Queued: events()}
		if r.IntN(3) > 0 {
			m.Tags = map[string]string{}
			for range count() {
				m.Tags[str()+string(rune('a'+r.IntN(26)))] = str()
			}
		}
		if r.IntN(3) > 0 {
			m.Timeouts = make([]handoff.Timeout, count())
			for j := range m.Timeouts {
				m.Timeouts[j] = handoff.Timeout{Kind: uint8(r.Uint32()), Name: str(), Remaining: r.Int64() - r.Int64(), Event: event(),
					Fired: int64(r.IntN(len(m.Queued) + 2))}
			}
		}
		s.Machines[i] = m
	}
	if r.IntN(5) > 0 {
		s.Conns = make([]handoff.Conn, count())
	}
	for i := range s.Conns {
		s.Conns[i] = handoff.Conn{Key: str(), Owner: str(), Unread: bin(), Meta: bin()}
	}
	if r.IntN(3) > 0 {
		s.Releases = make([]handoff.Release, count())
	}
	for i := range s.Releases {
		rl := handoff.Release{Machine: str(), Current: str(), Permanent: str()}
		if r.IntN(3) > 0 {
			rl.History = make([]string, count())
			for j := range rl.History {
				rl.History[j] = str()
			}
		}
		s.Releases[i] = rl
	}
	s.Captured = r.Int64() - r.Int64()
	if r.IntN(3) > 0 {
		s.Flags = make([]handoff.Flag, count())
	}
	for i := range s.Flags {
		s.Flags[i] = handoff.Flag{Flag: str() + strconv.Itoa(i), Value: str(), Old: str(), Who: str(), When: r.Int64() - r.Int64(), File: r.IntN(2) == 0}
	}
	return s
}

func msgpackEncode(t *testing.T, s *handoff.State) []byte {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	require.NoError(t, enc.Encode(s))
	return buf.Bytes()
}

// The hand-written codec writes the bytes msgpack's encoder writes for a
// State (the format's definition), and reads them as its decoder does.
func TestEncodeMatchesMsgpack(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for i := range 150 {
		s := randomState(r)
		want := msgpackEncode(t, &s)
		got, err := handoff.Encode(&s)
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, got), "state %d: encodings differ", i)

		var viaMsgpack handoff.State
		require.NoError(t, msgpack.Unmarshal(want, &viaMsgpack))
		back, err := handoff.Decode(got)
		require.NoError(t, err, "state %d", i)
		require.Equal(t, viaMsgpack, back, "state %d", i)
	}
}

// More than 65,535 elements take an array32 header.
func TestEncodeLargeArray(t *testing.T) {
	s := handoff.State{Conns: make([]handoff.Conn, 70000)}
	got, err := handoff.Encode(&s)
	require.NoError(t, err)
	require.True(t, bytes.Equal(msgpackEncode(t, &s), got))
	back, err := handoff.Decode(got)
	require.NoError(t, err)
	require.Len(t, back.Conns, 70000)
}

// Integers in any of msgpack's encodings are read, within range; other
// types where an integer belongs are refused.
func TestDecodeIntegers(t *testing.T) {
	// A state of one machine with one timeout, its Remaining given as ints.
	body := func(remaining ...byte) []byte {
		b := []byte{0x92, 0x91, 0x9a, 0xa0, 0xa0, 0xa0, 0xa0, 0xc0, 0xa0, 0xc0, 0x91, 0x94, 0x05, 0xa0}
		b = append(b, remaining...)
		return append(b, 0x93, 0x00, 0xa0, 0xc0, 0xc0, 0xc0, 0xc0)
	}
	for _, tc := range []struct {
		in   []byte
		want int64
	}{
		{[]byte{0x7f}, 127},
		{[]byte{0xff}, -1},
		{[]byte{0xcc, 0xff}, 255},
		{[]byte{0xcd, 0x01, 0x00}, 256},
		{[]byte{0xce, 0x00, 0x01, 0x00, 0x00}, 65536},
		{[]byte{0xcf, 0, 0, 0, 1, 0, 0, 0, 0}, 1 << 32},
		{[]byte{0xd0, 0x80}, -128},
		{[]byte{0xd1, 0x80, 0x00}, -32768},
		{[]byte{0xd2, 0xff, 0xff, 0xff, 0xfe}, -2},
		{[]byte{0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfd}, -3},
	} {
		s, err := handoff.Decode(body(tc.in...))
		require.NoError(t, err, "% x", tc.in)
		require.Equal(t, tc.want, s.Machines[0].Timeouts[0].Remaining, "% x", tc.in)
	}
	for _, bad := range [][]byte{
		{0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0}, // above MaxInt64
		{0xa1, '1'},                       // a string
		{0xc3},                            // true
		{0xcb, 0, 0, 0, 0, 0, 0, 0, 0},    // a float
	} {
		_, err := handoff.Decode(body(bad...))
		require.ErrorIs(t, err, handoff.ErrFormat, "% x", bad)
	}
	// A Kind beyond a byte.
	b := body(0x00)
	b[12] = 0xcd
	b = append(b[:13], append([]byte{0x01, 0x00}, b[13:]...)...)
	_, err := handoff.Decode(b)
	require.ErrorIs(t, err, handoff.ErrFormat)
	require.Contains(t, err.Error(), "out of range")
}

// Declared lengths larger than what is left are refused before anything
// is allocated for them.
func TestDecodeLengthsBounded(t *testing.T) {
	for name, in := range map[string][]byte{
		"machines": {0x92, 0xdd, 0x7f, 0xff, 0xff, 0xff},
		"conns":    {0x92, 0xc0, 0xdd, 0x7f, 0xff, 0xff, 0xff},
		"string":   {0x92, 0x91, 0x9a, 0xdb, 0x7f, 0xff, 0xff, 0xff},
		"tags":     {0x92, 0x91, 0x9a, 0xa0, 0xa0, 0xa0, 0xa0, 0xdf, 0x7f, 0xff, 0xff, 0xff},
		"fields":   {0x92, 0x91, 0x99},
		"flags":    {0x95, 0xc0, 0xc0, 0xc0, 0x00, 0xdd, 0x7f, 0xff, 0xff, 0xff},
	} {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := handoff.Decode(in)
			runtime.ReadMemStats(&after)
			require.ErrorIs(t, err, handoff.ErrFormat)
			require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<10), "bytes allocated")
		})
	}
}
