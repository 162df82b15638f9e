package handoff_test

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/internal/handoff"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func sample() handoff.State {
	return handoff.State{
		Machines: []handoff.Machine{{
			Key: "conn-1", Machine: "echo", Version: "v1", ID: "c1",
			Tags: map[string]string{"b": "2", "a": "1"}, State: "open", Data: []byte{0x2a},
			Timeouts:  []handoff.Timeout{{Kind: 5, Name: "idle", Remaining: 1500000000, Event: handoff.Event{Kind: 5, Name: "Idle", Payload: []byte{0x80}}}},
			Postponed: []handoff.Event{{Kind: 0, Name: "Line", Payload: []byte{0xa1, 'x'}}},
			Queued:    []handoff.Event{{Kind: 1, Name: "Line", Payload: []byte{0xa1, 'y'}}},
		}},
		Conns: []handoff.Conn{{Key: "conn-1", Owner: "conn-1", Unread: []byte("3\n4"), Meta: []byte{1}}},
	}
}

// sampleV2 is sample with what format 2 adds.
func sampleV2() handoff.State {
	s := sample()
	s.Releases = []handoff.Release{
		{Machine: "echo", Current: "v2", Permanent: "v1", History: []string{"v1", "v3"}},
		{Machine: "other", Current: "a", Permanent: "a"},
	}
	return s
}

// sampleV3 is sampleV2 with what format 3 adds: the capture instant, a
// timeout that had fired behind the queued event, and the flags.
func sampleV3() handoff.State {
	s := sampleV2()
	s.Captured = 123456789012
	m := &s.Machines[0]
	m.Timeouts = append(m.Timeouts, handoff.Timeout{Kind: 3, Remaining: -2000000, Event: handoff.Event{Kind: 3, Name: "Tick", Payload: []byte{0xc0}}, Fired: 2})
	s.Flags = []handoff.Flag{
		{Flag: "fast-dial", Value: "25%", Old: "off", Who: "alice", When: 1700000000123456789},
		{Flag: "new-tone", Value: "on", Old: "off", Who: "deploy", When: 1700000000000000000, File: true},
	}
	return s
}

// The bytes of a State are fixed by the format version: a change here is
// a change of format, and needs a new handoff.Version. Each version keeps
// its golden file; this build writes and reads them all.
func TestGolden(t *testing.T) {
	for _, tt := range []struct {
		v     uint16
		state handoff.State
	}{
		{1, sample()},
		{2, sampleV2()},
		{3, sampleV3()},
	} {
		t.Run(fmt.Sprintf("v%d", tt.v), func(t *testing.T) {
			b, err := handoff.EncodeVersion(&tt.state, tt.v)
			require.NoError(t, err)
			var h bytes.Buffer
			require.NoError(t, handoff.WriteHeader(&h, tt.v))
			got := hex.Dump(h.Bytes()) + hex.Dump(b)
			path := filepath.Join("testdata", fmt.Sprintf("state-v%d.hex", tt.v))
			if *update {
				require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, string(want), got)

			v, err := handoff.ReadHeader(&h, handoff.Version)
			require.NoError(t, err)
			require.Equal(t, tt.v, v)
			back, err := handoff.Decode(b)
			require.NoError(t, err)
			require.Equal(t, tt.state, back)
		})
	}
	s := sampleV2()
	_, err := handoff.EncodeVersion(&s, 1)
	require.ErrorContains(t, err, "format 1 cannot carry")
	_, err = handoff.EncodeVersion(&s, handoff.Version+1)
	require.ErrorIs(t, err, handoff.ErrVersion)
	b, err := handoff.Encode(&s)
	require.NoError(t, err)
	require.Equal(t, byte(0x95), b[0], "Encode writes the newest format")

	s3 := sampleV3()
	_, err = handoff.EncodeVersion(&s3, 2)
	require.ErrorContains(t, err, "format 2 cannot carry feature flags")
	// Without flags, format 2 leaves out what it cannot carry: the
	// capture instant and the places of fired timeouts.
	s3.Flags = nil
	b, err = handoff.EncodeVersion(&s3, 2)
	require.NoError(t, err)
	back, err := handoff.Decode(b)
	require.NoError(t, err)
	require.Zero(t, back.Captured)
	require.Zero(t, back.Machines[0].Timeouts[1].Fired)
	require.Equal(t, s3.Machines[0].Timeouts[1].Remaining, back.Machines[0].Timeouts[1].Remaining)
}

func TestDecodeErrors(t *testing.T) {
	s := sample()
	b, err := handoff.Encode(&s)
	require.NoError(t, err)
	dup := sample()
	dup.Machines = append(dup.Machines, dup.Machines[0])
	db, err := handoff.Encode(&dup)
	require.NoError(t, err)
	for name, in := range map[string][]byte{
		"empty":                         nil,
		"truncated":                     b[:len(b)-1],
		"trailing":                      append(append([]byte(nil), b...), 0),
		"not array":                     {0x80},
		"dup key":                       db,
		"dup flag":                      dupFlag(t),
		"fired behind more than queued": firedBeyond(t),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := handoff.Decode(in)
			require.ErrorIs(t, err, handoff.ErrFormat)
		})
	}
}

func dupFlag(t *testing.T) []byte {
	s := sampleV3()
	s.Flags[1].Flag = s.Flags[0].Flag
	b, err := handoff.Encode(&s)
	require.NoError(t, err)
	return b
}

func firedBeyond(t *testing.T) []byte {
	s := sampleV3()
	s.Machines[0].Timeouts[1].Fired = int64(len(s.Machines[0].Queued)) + 2
	b, err := handoff.Encode(&s)
	require.NoError(t, err)
	return b
}

func TestHeader(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, handoff.WriteHeader(&b, handoff.Version))
	require.Equal(t, []byte{'H', 'L', 'H', 'O', 0, 3}, b.Bytes())
	v, err := handoff.ReadHeader(&b, handoff.Version)
	require.NoError(t, err)
	require.Equal(t, handoff.Version, v)

	require.NoError(t, handoff.WriteHeader(&b, 1))
	v, err = handoff.ReadHeader(&b, handoff.Version)
	require.NoError(t, err, "format 1 is read too")
	require.Equal(t, uint16(1), v)

	for _, bad := range []uint16{0, handoff.Version + 1, 7} {
		require.NoError(t, handoff.WriteHeader(&b, bad))
		v, err = handoff.ReadHeader(&b, handoff.Version)
		require.ErrorIs(t, err, handoff.ErrVersion)
		require.Equal(t, bad, v)
	}
	require.NoError(t, handoff.WriteHeader(&b, 2))
	_, err = handoff.ReadHeader(&b, 1)
	require.ErrorIs(t, err, handoff.ErrVersion, "a build of format 1 refuses format 2")

	_, err = handoff.ReadHeader(strings.NewReader("HTTP/1"), handoff.Version)
	require.ErrorIs(t, err, handoff.ErrFormat)
}

func TestAnswer(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, handoff.WriteAnswer(&b, handoff.Refuse, "no"))
	require.Equal(t, []byte{'R', 0, 0, 0, 2, 'n', 'o'}, b.Bytes())
	a, reason, err := handoff.ReadAnswer(&b)
	require.NoError(t, err)
	require.Equal(t, handoff.Refuse, a)
	require.Equal(t, "no", reason)
	require.NoError(t, handoff.WriteAnswer(&b, handoff.Ack, ""))
	a, _, err = handoff.ReadAnswer(&b)
	require.NoError(t, err)
	require.Equal(t, handoff.Ack, a)
	_, _, err = handoff.ReadAnswer(strings.NewReader("?"))
	require.ErrorIs(t, err, handoff.ErrFormat)
	_, _, err = handoff.ReadAnswer(bytes.NewReader([]byte{'E', 0xff, 0, 0, 0}))
	require.ErrorIs(t, err, handoff.ErrFormat)
}

// More files than one SCM_RIGHTS message carries travel in order, and each
// still refers to its own open file description.
func TestStateFiles(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	a, b := unixConn(t, fds[0]), unixConn(t, fds[1])
	defer func() { require.NoError(t, a.Close()) }()
	defer func() { require.NoError(t, b.Close()) }()

	dir := t.TempDir()
	var files []*os.File
	for i := range 450 {
		f, err := os.Create(filepath.Join(dir, strings.Repeat("x", i%7+1)+string(rune('a'+i%26))+hex.EncodeToString([]byte{byte(i >> 8), byte(i)})))
		require.NoError(t, err)
		_, err = f.WriteString(hex.EncodeToString([]byte{byte(i >> 8), byte(i)}))
		require.NoError(t, err)
		files = append(files, f)
	}
	fdList := make([]int, len(files))
	for i, f := range files {
		fdList[i] = int(f.Fd())
	}
	errc := make(chan error, 1)
	go func() { errc <- handoff.WriteState(a, []byte("body"), fdList) }()
	body, got, err := handoff.ReadState(b)
	require.NoError(t, err)
	require.NoError(t, <-errc)
	require.Equal(t, "body", string(body))
	require.Len(t, got, len(files))
	for i, f := range got {
		_, err := f.Seek(0, 0)
		require.NoError(t, err)
		buf := make([]byte, 4)
		_, err = f.Read(buf)
		require.NoError(t, err)
		require.Equal(t, hex.EncodeToString([]byte{byte(i >> 8), byte(i)}), string(buf))
		require.NoError(t, f.Close())
		require.NoError(t, files[i].Close())
	}
}

func unixConn(t *testing.T, fd int) *net.UnixConn {
	t.Helper()
	f := os.NewFile(uintptr(fd), "pair")
	c, err := net.FileConn(f)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return c.(*net.UnixConn)
}
