package upgrade

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/flags"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/internal/handoff"
)

// These tests run both sides of a handoff in one process, the old one's
// tableflip upgrade played by a fakeFlip, on real sockets.

func testSystem(t *testing.T) *actor.System {
	t.Helper()
	sys := actor.NewSystem(actor.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(func() { require.NoError(t, sys.Shutdown(context.Background())) })
	return sys
}

// tcpPair returns the two ends of a TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { require.NoError(t, ln.Close()) }()
	client, err = net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	server, err = ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	return client, server
}

type side struct {
	f   *fakeFlip
	r   *Restarter
	log *logBuffer
	sys *actor.System
	h   *Handoff
}

func newSide(t *testing.T, dir string, parent bool, opts ...HandoffOption) *side {
	t.Helper()
	s := &side{f: newFakeFlip(), sys: testSystem(t)}
	s.f.hasParent = parent
	s.r, s.log = testRestarter(t, s.f)
	opts = append([]HandoffOption{WithHandoffDir(dir), WithHandoffTimeout(5 * time.Second)}, opts...)
	h, err := NewHandoff(s.r, s.sys, opts...)
	require.NoError(t, err)
	h.cfg.parentPID = func() int { return 0 }
	h.cfg.successor = selfIsSuccessor
	s.h = h
	return s
}

// selfIsSuccessor is the successor check of a Handoff whose new process is
// played in this process: the new side is no child of the old.
func selfIsSuccessor(pid int) (bool, error) { return pid == os.Getpid(), nil }

// successorOf is the new process of old's upgrade: a side on dir whose
// parent is old's process.
func successorOf(t *testing.T, old *side, dir string, opts ...HandoffOption) *side {
	t.Helper()
	nw := newSide(t, dir, true, opts...)
	nw.h.cfg.parentPID = func() int { return old.r.pid }
	return nw
}

// oldSide is a served process with one machine that owns one connection.
func oldSide(t *testing.T, dir string) (*side, actor.Ref, net.Conn, *atomic.Int32) {
	t.Helper()
	s := newSide(t, dir, false, WithCodes(sessionCode("v1")))
	require.NoError(t, s.r.Ready())
	ref, err := fsm.Start(context.Background(), s.sys, sessionCode("v1"))
	require.NoError(t, err)
	require.NoError(t, s.h.Manage("m1", ref))
	require.ErrorIs(t, s.h.Manage("m1", ref), ErrDuplicateKey)
	for range 2 {
		_, err := fsm.Call(context.Background(), ref, Line{Text: "x"})
		require.NoError(t, err)
	}
	client, server := tcpPair(t)
	resumed := new(atomic.Int32)
	conn := Conn{Conn: server, Owner: "m1", Meta: []byte("meta"),
		Pause:  func(context.Context) ([]byte, error) { return []byte("3\n4"), nil },
		Resume: func() { resumed.Add(1) },
	}
	require.NoError(t, s.h.Adopt("c1", conn))
	require.ErrorIs(t, s.h.Adopt("c1", conn), ErrDuplicateKey)
	require.Error(t, s.h.Adopt("c2", Conn{Conn: server}), "Pause and Resume are required")
	return s, ref, client, resumed
}

// upgrade starts the old side's upgrade and returns the channel on which
// the test says how the new process ended, and Upgrade's result.
func (s *side) upgrade(t *testing.T) (chan<- error, <-chan error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.r.Upgrade(context.Background()) }()
	return <-s.f.upgrades, done
}

func TestHandoffInProcess(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "handoff")
	old, oldRef, client, resumed := oldSide(t, dir)
	reply, done := old.upgrade(t)

	nw := successorOf(t, old, dir, WithCodes(sessionCode("v1")))
	got, err := nw.h.Receive(context.Background())
	require.NoError(t, err)
	require.Len(t, got.Machines, 1)
	rc := got.Conns["c1"]
	require.Equal(t, "m1", rc.Owner)
	require.Equal(t, []byte("3\n4"), rc.Unread)
	require.Equal(t, []byte("meta"), rc.Meta)
	ref, ok := nw.h.Machine("m1")
	require.True(t, ok)
	require.Equal(t, got.Machines["m1"], ref)
	v, err := fsm.Call(context.Background(), ref, Line{Text: "y"})
	require.NoError(t, err)
	require.Regexp(t, `^3 \d+ v1 y$`, v, "the data came along")

	reply <- nil // the new process is ready
	require.NoError(t, <-done)
	reason, err := actor.Wait(context.Background(), oldRef)
	require.NoError(t, err)
	require.ErrorIs(t, reason, actor.Killed)
	require.Zero(t, resumed.Load())
	_, ok = old.h.Machine("m1")
	require.False(t, ok)

	// The connection lives on in the new process.
	_, err = rc.Conn.Write([]byte("hello\n"))
	require.NoError(t, err)
	buf := make([]byte, 6)
	_, err = io.ReadFull(client, buf)
	require.NoError(t, err)
	require.Equal(t, "hello\n", string(buf))
	require.NoError(t, rc.Conn.Close())
}

func TestHandoffResumesWhenNewProcessFails(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "handoff")
	old, oldRef, client, resumed := oldSide(t, dir)
	reply, done := old.upgrade(t)

	nw := successorOf(t, old, dir, WithCodes(sessionCode("v1")))
	got, err := nw.h.Receive(context.Background())
	require.NoError(t, err)
	for _, c := range got.Conns {
		require.NoError(t, c.Conn.Close()) // the new process dies
	}
	reply <- errors.New("child 42 exited") // before Ready
	require.Error(t, <-done)

	require.Equal(t, int32(1), resumed.Load())
	v, err := fsm.Call(context.Background(), oldRef, Line{Text: "z"})
	require.NoError(t, err)
	require.Regexp(t, `^3 \d+ v1 z$`, v, "the old machine goes on")
	require.Contains(t, old.log.String(), "machines and connections resumed here")

	// The old process's connection is intact.
	_, err = client.Write([]byte("ping"))
	require.NoError(t, err)
}

func TestHandoffRefusedFormat(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "handoff")
	old, oldRef, _, resumed := oldSide(t, dir)
	reply, done := old.upgrade(t)
	nw := successorOf(t, old, dir, WithCodes(sessionCode("v1")))
	nw.h.cfg.minFormat = handoff.Version + 1 // a build that reads only a newer format
	_, err := nw.h.Receive(context.Background())
	require.ErrorIs(t, err, ErrHandoff)
	reply <- errors.New("child exited")
	require.Error(t, <-done)
	require.Zero(t, resumed.Load(), "nothing was paused")
	_, err = fsm.Call(context.Background(), oldRef, Line{Text: "z"})
	require.NoError(t, err)
	require.Contains(t, old.log.String(), "unsupported format version")
}

func TestHandoffFirstProcess(t *testing.T) {
	s := newSide(t, filepath.Join(t.TempDir(), "handoff"), false)
	got, err := s.h.Receive(context.Background())
	require.NoError(t, err)
	require.Empty(t, got.Machines)
	require.Empty(t, got.Conns)
}

func chainCode(version string) *fsm.Machine[[]string] {
	m := fsm.Define("chain", version, "s", []string(nil))
	m.OnUpgrade(func(from, state string, raw msgpack.RawMessage) (string, []string, error) {
		var log []string
		err := msgpack.Unmarshal(raw, &log)
		return state, append(log, from+"->"+version), err
	})
	return m
}

func TestHandoffChain(t *testing.T) {
	s := newSide(t, filepath.Join(t.TempDir(), "handoff"), false, WithCodes(chainCode("v1"), chainCode("v2"), chainCode("v3")))
	data, err := msgpack.Marshal([]string{})
	require.NoError(t, err)
	for _, tc := range []struct {
		from string
		want []string
	}{
		{"v1", []string{"v1->v2", "v2->v3"}},
		{"v2", []string{"v2->v3"}},
		{"v3", []string{}},
		{"v0", []string{"v0->v3"}}, // unknown: straight to the last
	} {
		img, code, err := s.h.chain(context.Background(), fsm.Image{Snapshot: fsm.Snapshot{Machine: "chain", Version: tc.from, State: "s", Data: data}})
		require.NoError(t, err)
		ref, err := fsm.Start(context.Background(), s.sys, code, fsm.FromImage(img))
		require.NoError(t, err)
		inf, err := fsm.Inspect(context.Background(), ref)
		require.NoError(t, err)
		var log []string
		require.NoError(t, msgpack.Unmarshal(inf.Data, &log))
		require.Equal(t, tc.want, log, "from %s", tc.from)
	}
	_, _, err = s.h.chain(context.Background(), fsm.Image{Snapshot: fsm.Snapshot{Machine: "other"}})
	require.Error(t, err)
}

func TestHandoffDirMustBePrivate(t *testing.T) {
	f := newFakeFlip()
	r, _ := testRestarter(t, f)
	_, err := NewHandoff(r, testSystem(t), WithHandoffDir(t.TempDir())) // 0755
	require.ErrorContains(t, err, "open to others")
}

// A handoff holds the listeners back from its pause: a connection that
// arrives meanwhile waits in the queue, and is accepted after a release.
func TestListenerHold(t *testing.T) {
	ready := make(chan struct{})
	close(ready)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := newListener(ln, ready)
	defer func() { require.NoError(t, l.Close()) }()

	accepted := make(chan net.Conn)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	l.hold(time.Second) // wakes the goroutine in Accept, which then waits
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer func() { require.NoError(t, c.Close()) }()
	select {
	case <-accepted:
		t.Fatal("accepted while held")
	case <-time.After(50 * time.Millisecond): // real sockets: a short real wait
	}
	l.release()
	sc := <-accepted
	require.NoError(t, sc.Close())
	l.hold(time.Second)
	l.pause()
	l.release() // after a pause, Accept waits for Close
	require.NoError(t, l.Close())
	_, ok := <-accepted
	require.False(t, ok)
}

// A new process that cannot restore the state says so, and the old one
// serves again at once, without waiting for the new one to be gone.
func TestHandoffResumesAtOnceWhenRestoreFails(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "handoff")
	old, oldRef, _, resumed := oldSide(t, dir)
	reply, done := old.upgrade(t)
	nw := newSide(t, dir, true) // no code for the session machine
	nw.h.cfg.parentPID = func() int { return old.r.pid }
	_, err := nw.h.Receive(context.Background())
	require.ErrorIs(t, err, ErrHandoff)
	require.ErrorContains(t, err, "no code for session")

	// The upgrade still runs (the new process has not exited yet).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := fsm.Call(ctx, oldRef, Line{Text: "z"})
	require.NoError(t, err)
	require.Regexp(t, `^3 \d+ v1 z$`, v, "served again before the upgrade ends")
	require.Eventually(t, func() bool { return resumed.Load() == 1 }, 10*time.Second, time.Millisecond)

	reply <- errors.New("child exited")
	require.Error(t, <-done)
	require.Equal(t, int32(1), resumed.Load(), "resumed once")
}

// WithRestoreSpawn gives restored machines their spawn options: a name, a
// link to a supervisor.
func TestHandoffRestoreSpawn(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "handoff")
	old, _, _, _ := oldSide(t, dir)
	reply, done := old.upgrade(t)
	nw := newSide(t, dir, true, WithCodes(sessionCode("v1")),
		WithRestoreSpawn(func(key string) []actor.SpawnOption { return []actor.SpawnOption{actor.WithName("session/" + key)} }))
	nw.h.cfg.parentPID = func() int { return old.r.pid }
	got, err := nw.h.Receive(context.Background())
	require.NoError(t, err)
	ref, ok := nw.sys.Whereis("session/m1")
	require.True(t, ok)
	require.Equal(t, got.Machines["m1"], ref)
	reply <- nil
	require.NoError(t, <-done)
	for _, c := range got.Conns {
		require.NoError(t, c.Conn.Close())
	}
}

// AskFlag asks a session machine whether the flag named is on for it.
type AskFlag struct{ Name string }

// A restored machine reads the flags WithHandoffFlags gives; without it,
// every flag is off.
func TestHandoffRestoredMachinesReadFlags(t *testing.T) {
	for _, given := range []bool{true, false} {
		t.Run(fmt.Sprint("flags given: ", given), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "handoff")
			old, _, _, _ := oldSide(t, dir)
			reply, done := old.upgrade(t)
			fl := flags.New()
			_, err := fl.Set("fast-dial", flags.On, "test")
			require.NoError(t, err)
			opts := []HandoffOption{WithCodes(sessionCode("v1"))}
			if given {
				opts = append(opts, WithHandoffFlags(fl))
			}
			nw := successorOf(t, old, dir, opts...)
			got, err := nw.h.Receive(context.Background())
			require.NoError(t, err)
			on, err := fsm.Call(context.Background(), got.Machines["m1"], AskFlag{Name: "fast-dial"})
			require.NoError(t, err)
			require.Equal(t, given, on)
			reply <- nil
			require.NoError(t, <-done)
			for _, c := range got.Conns {
				require.NoError(t, c.Conn.Close())
			}
		})
	}
}
