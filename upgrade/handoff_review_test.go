package upgrade

import (
	"bufio"
	"context"
	"errors"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/internal/handoff"
)

// Tests of the review of the state handoff (session 6): failure modes of a
// restart in which a machine, an event or a connection was lost or
// duplicated, each failing before its fix.

// A Handoff that cannot listen for the new process refuses the upgrade: a
// new process started without the state takes over the sockets and leaves
// every machine to drain and die here. Before, the attempt went on with a
// log line ("the state stays here").
func TestHandoffThatCannotListenRefusesTheUpgrade(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "handoff")
	old, oldRef, _, resumed := oldSide(t, dir)
	// Something removed the directory and put a file in its place.
	require.NoError(t, os.RemoveAll(dir))
	require.NoError(t, os.WriteFile(dir, nil, 0o600))

	done := make(chan error, 1)
	go func() { done <- old.r.Upgrade(context.Background()) }()
	select {
	case reply := <-old.f.upgrades:
		reply <- errNewProcessStarted
		<-done
		t.Fatal("a new process was started though the state could not be offered to it")
	case err := <-done:
		require.ErrorIs(t, err, ErrHandoff)
		require.Contains(t, err.Error(), "not a directory")
	}
	require.Equal(t, StateReady, old.r.State())
	require.Zero(t, resumed.Load(), "nothing was paused")
	_, err := fsm.Call(context.Background(), oldRef, Line{Text: "z"})
	require.NoError(t, err, "the machine serves on")
	require.Contains(t, old.log.String(), "upgrade: refused; this process keeps serving")
	last, ok := old.r.LastAttempt()
	require.True(t, ok)
	require.ErrorIs(t, last.Err, ErrHandoff)

	// With the directory back, the next attempt hands over.
	require.NoError(t, os.Remove(dir))
	reply, up := old.upgrade(t)
	nw := successorOf(t, old, dir, WithCodes(sessionCode("v1")))
	got, err := nw.h.Receive(context.Background())
	require.NoError(t, err)
	require.Len(t, got.Machines, 1)
	reply <- nil
	require.NoError(t, <-up)
}

// A handoff directory removed while the process runs (a temporary-file
// cleaner) is made again at the upgrade. Before, the old process could not
// listen, and the upgrade went on without the state.
func TestHandoffDirRemovedIsMadeAgain(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "handoff")
	old, _, _, _ := oldSide(t, dir)
	require.NoError(t, os.RemoveAll(dir))
	reply, up := old.upgrade(t)
	nw := successorOf(t, old, dir, WithCodes(sessionCode("v1")))
	got, err := nw.h.Receive(context.Background())
	require.NoError(t, err)
	require.Len(t, got.Machines, 1, "the machine came along")
	require.Len(t, got.Conns, 1)
	reply <- nil
	require.NoError(t, <-up)
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
}

// A handoff directory too long for a Unix socket's path is refused by
// NewHandoff, naming it. Before, NewHandoff accepted it and every upgrade
// went on without the state (bind: invalid argument).
func TestHandoffDirTooLong(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 100))
	f := newFakeFlip()
	r, _ := testRestarter(t, f)
	_, err := NewHandoff(r, testSystem(t), WithHandoffDir(dir))
	require.ErrorContains(t, err, "too long for a Unix socket's path")
	require.ErrorContains(t, err, dir)
}

var errNewProcessStarted = &testError{"test: new process started"}

type testError struct{ s string }

func (e *testError) Error() string { return e.s }

// lateAck runs a handoff whose old side gives up waiting for the
// acknowledgement (its handoff timeout passes) while the new process is
// still restoring: whenLate runs on the old side when its wait has timed
// out, with the new side's Receive let go, before the old side shuts its
// read side; with whenLate nil, the new side is let go only once that
// side is shut, so its acknowledgement comes after. It returns the new
// side's Receive result and the old side.
func lateAck(t *testing.T, whenLate func(restored <-chan error)) (old *side, oldRef actor.Ref, resumed *atomic.Int32, got *Restored, recvErr error, reply chan<- error, done <-chan error) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "handoff")
	old, oldRef, _, resumed = oldSide(t, dir)
	old.h.cfg.timeout = time.Second
	late := make(chan struct{})
	received := make(chan error, 1)
	if whenLate == nil { // the new process writes once the read side is shut
		old.h.cfg.ackShut = func() { close(late) }
	} else {
		old.h.cfg.ackLate = func() {
			close(late) // the new process goes on
			whenLate(received)
		}
	}
	reply, done = old.upgrade(t)
	nw := successorOf(t, old, dir, WithCodes(sessionCode("v1")))
	nw.h.cfg.fault = func(stage string) {
		if stage == "restored" {
			<-late // restoring took longer than the old side waits
		}
	}
	got, recvErr = nw.h.Receive(context.Background())
	received <- recvErr
	return old, oldRef, resumed, got, recvErr, reply, done
}

// The acknowledgement written just as the old process's wait for it ends
// (its handoff timeout) counts: the new process, whose write succeeded,
// has the machines and goes on to Ready. Before, the old process resumed
// every machine and connection at its timeout, whatever the new one then
// did: both ran the machine and read the connection.
func TestHandoffAckAtTheTimeout(t *testing.T) {
	old, oldRef, resumed, got, err, reply, done := lateAck(t, func(received <-chan error) {
		<-received // the new process wrote "A" before the old one decided
	})
	require.NoError(t, err)
	require.Len(t, got.Machines, 1)
	reply <- nil // so it becomes ready
	require.NoError(t, <-done)
	require.Zero(t, resumed.Load(), "the connection is the new process's alone")
	require.NotContains(t, old.log.String(), "without the state")
	reason, err := actor.Wait(context.Background(), oldRef)
	require.NoError(t, err)
	require.ErrorIs(t, reason, ErrHandedOff, "the old machine stops: it runs in the new process")
	require.Contains(t, old.log.String(), "state handed over")
}

// An acknowledgement the new process writes after the old process's wait
// for it ended fails in the new process, which stops what it restored: the
// old one resumes everything, alone.
func TestHandoffAckAfterTheTimeout(t *testing.T) {
	old, oldRef, resumed, got, err, reply, done := lateAck(t, nil)
	require.ErrorIs(t, err, ErrHandoff)
	require.Nil(t, got)
	reply <- errors.New("child exited") // it exits
	require.Error(t, <-done)
	require.Equal(t, int32(1), resumed.Load())
	_, err = fsm.Call(context.Background(), oldRef, Line{Text: "z"})
	require.NoError(t, err, "the old machine serves on")
	_ = old
}

// A new process whose Receive failed cannot become ready: had it, it would
// own the sockets while every machine stayed in the old process, which
// then drains and exits with them ("took over without the state"). Before,
// Ready went through.
func TestReadyRefusedAfterFailedReceive(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "handoff")
	old, oldRef, _, resumed := oldSide(t, dir)
	reply, done := old.upgrade(t)
	nw := successorOf(t, old, dir, WithCodes(sessionCode("v1")))
	nw.h.cfg.minFormat = handoff.Version + 1 // a build that cannot read the state
	_, err := nw.h.Receive(context.Background())
	require.ErrorIs(t, err, handoff.ErrVersion)
	err = nw.r.Ready()
	require.ErrorIs(t, err, ErrHandoff)
	require.ErrorIs(t, err, handoff.ErrVersion, "the reason is the Receive's")
	require.Equal(t, StateStarting, nw.r.State())
	// Tried again, Receive finds no state to take (the old process has
	// let go of its socket); Ready still refuses.
	got, err := nw.h.Receive(context.Background())
	require.NoError(t, err)
	require.Empty(t, got.Machines)
	require.ErrorIs(t, nw.r.Ready(), handoff.ErrVersion)

	reply <- errors.New("child exited") // as the new process does then
	require.Error(t, <-done)
	require.Zero(t, resumed.Load(), "nothing was paused")
	_, err = fsm.Call(context.Background(), oldRef, Line{Text: "z"})
	require.NoError(t, err)
	require.Equal(t, StateReady, old.r.State())
}

// brittle is a machine's data that cannot be encoded once broken.
type brittle struct{ Broken bool }

func (b brittle) EncodeMsgpack(enc *msgpack.Encoder) error {
	if b.Broken {
		return errors.New("brittle: cannot be encoded")
	}
	return enc.EncodeBool(false)
}

func (b *brittle) DecodeMsgpack(dec *msgpack.Decoder) error {
	var err error
	b.Broken, err = dec.DecodeBool()
	return err
}

type breakIt struct{}

func brittleCode() *fsm.Machine[brittle] {
	m := fsm.Define("brittle", "v1", "s", brittle{})
	fsm.OnAny(m, func(_ breakIt, d brittle) fsm.Result[brittle] {
		return fsm.Keep(brittle{Broken: true}, fsm.Reply("broken"))
	})
	fsm.OnAny(m, func(l Line, d brittle) fsm.Result[brittle] {
		return fsm.Keep(d, fsm.Reply("still here"))
	})
	return m
}

// A machine whose data cannot be encoded fails the handoff before the new
// process has anything: the error names the machine and the reason, the
// new process's Receive fails, and the old process resumes every machine
// (that one too) and every connection.
func TestHandoffMachineThatCannotBeEncoded(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "handoff")
	old, oldRef, _, resumed := oldSide(t, dir)
	bad, err := fsm.Start(context.Background(), old.sys, brittleCode())
	require.NoError(t, err)
	require.NoError(t, old.h.Manage("m2", bad))
	_, err = fsm.Call(context.Background(), bad, breakIt{})
	require.NoError(t, err)

	reply, done := old.upgrade(t)
	nw := successorOf(t, old, dir, WithCodes(sessionCode("v1"), brittleCode()))
	_, err = nw.h.Receive(context.Background())
	require.ErrorIs(t, err, ErrHandoff)
	require.ErrorIs(t, nw.r.Ready(), ErrHandoff)
	_, ok := nw.h.Machine("m1")
	require.False(t, ok, "the new process restored nothing")
	reply <- errors.New("child exited")
	require.Error(t, <-done)

	require.Equal(t, int32(1), resumed.Load())
	for _, ref := range []actor.Ref{oldRef, bad} {
		_, err := fsm.Call(context.Background(), ref, Line{Text: "z"})
		require.NoError(t, err, "every machine serves on")
	}
	logs := old.log.String()
	require.Contains(t, logs, `image of machine \"m2\"`)
	require.Contains(t, logs, "brittle: cannot be encoded")
}

// A restored connection is not read before the new process is ready: if
// it fails first, the old process resumes the connection from the state it
// handed over, and a line read by the new one would be lost (and a request
// answered twice). Before, the new process's reader took the line at once
// (the test server and the phone switch serve restored connections before
// Ready); the old one, resumed, never saw it.
func TestRestoredConnNotReadBeforeReady(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "handoff")
	old, _, client, resumed := oldSide(t, dir)
	oldConn, ok := old.h.conns.get("c1")
	require.True(t, ok)
	reply, done := old.upgrade(t)
	nw := successorOf(t, old, dir, WithCodes(sessionCode("v1")))
	got, err := nw.h.Receive(context.Background())
	require.NoError(t, err)
	rc := got.Conns["c1"]

	_, err = client.Write([]byte("hello\n"))
	require.NoError(t, err)
	require.NoError(t, rc.Conn.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
	buf := make([]byte, 16)
	n, err := rc.Conn.Read(buf) // the new process serves before Ready
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "read %q before Ready", buf[:n])
	require.Zero(t, n)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout())

	// A reader waiting when the new process dies (its connections closed)
	// returns, as from a closed socket.
	require.NoError(t, rc.Conn.SetReadDeadline(time.Time{}))
	read := make(chan error, 1)
	go func() {
		_, err := rc.Conn.Read(buf)
		read <- err
	}()
	require.NoError(t, rc.Conn.Close())
	require.ErrorIs(t, <-read, net.ErrClosed)
	reply <- errors.New("child exited")
	require.Error(t, <-done)
	require.Equal(t, int32(1), resumed.Load())

	// The old process, resumed, reads the line: nothing was lost.
	require.NoError(t, oldConn.Conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	line := make([]byte, 6)
	_, err = io.ReadFull(oldConn.Conn, line)
	require.NoError(t, err)
	require.Equal(t, "hello\n", string(line))
}

// Once the new process is ready, a restored connection reads, also in a
// Read that was waiting; it can be adopted again and handed on, and its
// NetConn is the connection itself.
func TestRestoredConnReadsOnceReady(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "handoff")
	old, _, client, _ := oldSide(t, dir)
	reply, done := old.upgrade(t)
	nw := successorOf(t, old, dir, WithCodes(sessionCode("v1")))
	got, err := nw.h.Receive(context.Background())
	require.NoError(t, err)
	rc := got.Conns["c1"]
	require.NoError(t, nw.h.Adopt("c1", Conn{Conn: rc.Conn, Owner: rc.Owner,
		Pause: func(context.Context) ([]byte, error) { return nil, nil }, Resume: func() {}}))
	nc, ok := rc.Conn.(interface{ NetConn() net.Conn })
	require.True(t, ok)
	require.IsType(t, &net.TCPConn{}, nc.NetConn())
	_, ok = rc.Conn.(interface {
		CloseRead() error
		CloseWrite() error
	})
	require.True(t, ok, "half-closes as a *net.TCPConn does")

	read := make(chan string, 1)
	go func() {
		buf := make([]byte, 6)
		_, err := io.ReadFull(rc.Conn, buf)
		if err != nil {
			read <- err.Error()
			return
		}
		read <- string(buf)
	}()
	_, err = client.Write([]byte("hello\n"))
	require.NoError(t, err)
	require.NoError(t, nw.r.Ready())
	require.Equal(t, "hello\n", <-read)
	reply <- nil
	require.NoError(t, <-done)
}

// A second upgrade asked for while a handoff holds everything paused is
// refused at once, not queued, and the handoff goes through; a Call made in
// the old process to a machine imaged meanwhile does not hang: its caller
// gets the machine's exit, ErrHandedOff.
func TestHandoffSecondUpgradeAndLateCall(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "handoff")
	old, oldRef, _, _ := oldSide(t, dir)
	reply, done := old.upgrade(t)
	nw := successorOf(t, old, dir, WithCodes(sessionCode("v1")))
	called := make(chan error, 1)
	nw.h.cfg.fault = func(stage string) {
		if stage != "received" { // the old machines are suspended and imaged
			return
		}
		require.ErrorIs(t, old.r.Upgrade(context.Background()), ErrUpgradeInProgress)
		go func() {
			_, err := fsm.Call(context.Background(), oldRef, Line{Text: "late"})
			called <- err
		}()
	}
	got, err := nw.h.Receive(context.Background())
	require.NoError(t, err)
	require.Len(t, got.Machines, 1)
	reply <- nil
	require.NoError(t, <-done)
	err = <-called
	require.ErrorIs(t, err, ErrHandedOff)
	require.Contains(t, old.log.String(), "upgrade: request refused")
}

// A new process with a Handoff that calls Ready without Receive is refused:
// it would take the sockets over while the old process keeps every machine
// and then drains and exits with them. Before, Ready went through. The
// first process, which has nothing to receive, needs no Receive.
func TestReadyRefusedBeforeReceive(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "handoff")
	nw := newSide(t, dir, true, WithCodes(sessionCode("v1")))
	err := nw.r.Ready()
	require.ErrorIs(t, err, ErrHandoff)
	require.ErrorContains(t, err, "before Receive")
	require.Equal(t, StateStarting, nw.r.State())

	first := newSide(t, dir, false)
	require.NoError(t, first.r.Ready())
}

// blockerCode answers a Line once block is closed, and says on entered
// that it has begun.
func blockerCode(entered chan<- struct{}, block <-chan struct{}) *fsm.Machine[int] {
	m := fsm.Define("session", "v1", "open", 0)
	fsm.On(m, "open", func(l Line, n int) fsm.Result[int] {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-block
		return fsm.Keep(n+1, fsm.Reply(l.Text))
	})
	return m
}

// A Pause that fails (the request in hand outlasts the handoff timeout)
// must leave its connection read as before: the handoff fails and resumes
// only what it paused. Before, the test server's reader (as the Example's)
// stopped itself once that request ended, and waited for a Resume that
// never came: the connection was never read again.
func TestHandoffPauseThatFailsLeavesTheConnRead(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "handoff")
	old := newSide(t, dir, false, WithCodes(sessionCode("v1")))
	require.NoError(t, old.r.Ready())
	old.h.cfg.timeout = time.Second
	entered, block := make(chan struct{}, 1), make(chan struct{})
	ref, err := fsm.Start(context.Background(), old.sys, blockerCode(entered, block))
	require.NoError(t, err)
	require.NoError(t, old.h.Manage("k", ref))
	srv := &seqServer{h: old.h, sys: old.sys, done: make(chan struct{}), conns: map[string]*seqConn{}, pausing: func() {}}
	client, server := tcpPair(t)
	require.NoError(t, srv.serve("k", server, nil, ref))
	defer func() {
		_ = client.Close()
		close(srv.done) // a reader waiting for a resume returns too
		srv.wg.Wait()
	}()
	require.NoError(t, client.SetReadDeadline(time.Now().Add(10*time.Second))) // a bound, if it fails
	br := bufio.NewReader(client)

	_, err = client.Write([]byte("first\n"))
	require.NoError(t, err)
	<-entered // the reader waits for its machine
	reply, done := old.upgrade(t)
	nw := successorOf(t, old, dir, WithCodes(sessionCode("v1")))
	_, err = nw.h.Receive(context.Background())
	require.ErrorIs(t, err, ErrHandoff, "the pause outlasted the handoff timeout")
	reply <- errors.New("child exited")
	require.Error(t, <-done)
	require.Contains(t, old.log.String(), `pause connection \"k\"`)

	close(block) // the request in hand ends
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "first\n", line)
	_, err = client.Write([]byte("second\n"))
	require.NoError(t, err)
	line, err = br.ReadString('\n')
	require.NoError(t, err, "the connection is read again")
	require.Equal(t, "second\n", line)
}

type sum struct{}

// bigCode holds a large []byte, from data, and answers its length and a
// checksum.
func bigCode(data []byte) *fsm.Machine[[]byte] {
	m := fsm.Define("big", "v1", "s", data)
	fsm.OnAny(m, func(_ sum, d []byte) fsm.Result[[]byte] {
		return fsm.Keep(d, fsm.Reply([2]uint64{uint64(len(d)), uint64(crc32.ChecksumIEEE(d))}))
	})
	return m
}

// A machine with 16 MiB of data travels whole, with the others.
func TestHandoffLargeData(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "handoff")
	old, _, _, _ := oldSide(t, dir)
	data := make([]byte, 16<<20)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range 4096 {
		data[i] = byte(rnd.Uint32())
	}
	for n := 4096; n < len(data); n *= 2 {
		copy(data[n:], data[:n])
	}
	ref, err := fsm.Start(context.Background(), old.sys, bigCode(data))
	require.NoError(t, err)
	require.NoError(t, old.h.Manage("big", ref))
	want, err := fsm.Call(context.Background(), ref, sum{})
	require.NoError(t, err)

	reply, done := old.upgrade(t)
	nw := successorOf(t, old, dir, WithCodes(sessionCode("v1"), bigCode(nil)))
	got, err := nw.h.Receive(context.Background())
	require.NoError(t, err)
	require.Len(t, got.Machines, 2)
	v, err := fsm.Call(context.Background(), got.Machines["big"], sum{})
	require.NoError(t, err)
	require.Equal(t, want, v)
	require.Equal(t, uint64(16<<20), v.([2]uint64)[0])
	reply <- nil
	require.NoError(t, <-done)
}

// A peer on the handoff socket that answers garbage, or stops in the
// middle, fails the handoff with an error naming what was wrong, and the
// old process resumes what it had paused: nothing is lost.
func TestHandoffPeerGarbageOrTruncated(t *testing.T) {
	readPhase := func(t *testing.T, c *net.UnixConn) {
		t.Helper()
		_, files, err := handoff.ReadState(c)
		require.NoError(t, err)
		closeFiles(files)
	}
	for _, tc := range []struct {
		name    string // short: the socket's path holds it
		peer    func(t *testing.T, c *net.UnixConn)
		paused  bool   // the connection was paused (and so resumed)
		wantLog string // a regexp matched in the old process's log
	}{
		{"garbage", func(t *testing.T, c *net.UnixConn) {
			_, err := c.Write([]byte{0x99, 1, 2, 3})
			require.NoError(t, err)
		}, false, "answer 0x99"},
		{"header", func(*testing.T, *net.UnixConn) {}, false, "EOF"},
		{"phase1", func(t *testing.T, c *net.UnixConn) {
			require.NoError(t, handoff.WriteAnswer(c, handoff.Accept, ""))
			readPhase(t, c)
			_, err := c.Write([]byte("junk"))
			require.NoError(t, err)
		}, false, "answer 0x6a"},
		{"reason", func(t *testing.T, c *net.UnixConn) {
			require.NoError(t, handoff.WriteAnswer(c, handoff.Accept, ""))
			readPhase(t, c)
			require.NoError(t, handoff.WriteAnswer(c, handoff.Accept, ""))
			readPhase(t, c)
			_, err := c.Write([]byte{handoff.Fail, 0, 0, 0, 100, 'o', 'o', 'p'})
			require.NoError(t, err)
		}, true, "no acknowledgement"},
		{"phase2", func(t *testing.T, c *net.UnixConn) {
			require.NoError(t, handoff.WriteAnswer(c, handoff.Accept, ""))
			readPhase(t, c)
			require.NoError(t, handoff.WriteAnswer(c, handoff.Accept, ""))
			// The old side's write of phase 2 races this close: before it, the write
			// fails (EPIPE); after it, the write lands in a buffer nobody reads and the
			// wait for the ack fails (ECONNRESET). Both are the peer gone in phase 2.
		}, true, "exchange failed.*(write state|no acknowledgement)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "handoff")
			old, oldRef, client, resumed := oldSide(t, dir)
			reply, done := old.upgrade(t)
			nc, err := net.Dial("unix", old.h.socketPath(old.r.pid))
			require.NoError(t, err)
			c := nc.(*net.UnixConn)
			_, err = handoff.ReadHeader(c, handoff.Version)
			require.NoError(t, err)
			tc.peer(t, c)
			require.NoError(t, c.Close())
			reply <- errors.New("child exited")
			require.Error(t, <-done)

			if tc.paused {
				require.Equal(t, int32(1), resumed.Load())
			} else {
				require.Zero(t, resumed.Load())
			}
			_, err = fsm.Call(context.Background(), oldRef, Line{Text: "z"})
			require.NoError(t, err, "the machine serves on")
			_, err = client.Write([]byte("ping"))
			require.NoError(t, err, "the connection is open")
			require.Regexp(t, tc.wantLog, old.log.String())
			require.Equal(t, StateReady, old.r.State())
		})
	}
}
