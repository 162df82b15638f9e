package upgrade

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/flags"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/internal/handoff"
)

// Tests of what handoff format 3 carries: the capture instant of the
// timeouts, the places of fired timeouts, the flag set; and of the format
// written for a new process of an older build.

// clockAt is a monotonic clock that reads at.
func clockAt(at int64) func() int64 { return func() int64 { return at } }

// A timeout's time left is counted from the capture: the time until the
// new process restores it (here 4 s on the clocks both processes read) is
// taken off, and a timeout whose time ran out meanwhile fires at once.
// Before, the new process armed it with the time it had at the capture, so
// that the handoff's time was added to it. A state of format 2 has no
// capture instant: its timeouts run for what they had.
func TestHandoffTimeoutsCountTheHandoff(t *testing.T) {
	const t0 = int64(1000 * time.Second)
	for _, tc := range []struct {
		name     string
		format   uint16 // the old side's build
		after    time.Duration
		lo, hi   time.Duration // the restored timeout's time left
		firedNow bool
	}{
		{name: "4s later", format: handoff.Version, after: 4 * time.Second, lo: 5 * time.Second, hi: 6 * time.Second},
		{name: "11s later", format: handoff.Version, after: 11 * time.Second, firedNow: true},
		{name: "clock went back", format: handoff.Version, after: -time.Second, lo: 9 * time.Second, hi: 10 * time.Second},
		{name: "format 2", format: 2, after: 4 * time.Second, lo: 9 * time.Second, hi: 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := filepath.Join(t.TempDir(), "handoff")
			old, oldRef, _, _ := oldSide(t, dir)
			old.h.cfg.format = tc.format
			old.h.cfg.clock = clockAt(t0)
			v, err := fsm.Call(ctx, oldRef, Arm{Ms: 10000, Text: "t"})
			require.NoError(t, err)
			require.Equal(t, "armed", v)
			reply, done := old.upgrade(t)

			nw := successorOf(t, old, dir, WithCodes(sessionCode("v1")))
			nw.h.cfg.clock = clockAt(t0 + int64(tc.after))
			got, err := nw.h.Receive(ctx)
			require.NoError(t, err)
			ref := got.Machines["m1"]
			if tc.firedNow {
				// Its event was sent before Receive returned: this call
				// comes after it.
				v, err := fsm.Call(ctx, ref, Fired{})
				require.NoError(t, err)
				require.Equal(t, "t@"+strconv.Itoa(os.Getpid()), v)
			} else {
				require.NoError(t, actor.Suspend(ctx, ref))
				img, err := fsm.CaptureSuspended(ctx, ref)
				require.NoError(t, err)
				require.NoError(t, actor.Resume(ctx, ref))
				require.Len(t, img.Timeouts, 1)
				left := img.Timeouts[0].Remaining
				require.True(t, left > tc.lo && left <= tc.hi, "time left %v, want in (%v, %v]", left, tc.lo, tc.hi)
			}
			reply <- nil
			require.NoError(t, <-done)
			for _, c := range got.Conns {
				require.NoError(t, c.Conn.Close())
			}
		})
	}
}

// The flag set travels: a value set through the admin API (or any Set)
// in the old process survives in the new one, with who set it and when,
// over the new process's file; a value from the file is the new file's
// (the operator edited it before the restart); machines read the merged
// set from their first event. Before, the new process had only its file.
func TestHandoffCarriesFlags(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "handoff")
	file := filepath.Join(t.TempDir(), "flags.txt")
	require.NoError(t, os.WriteFile(file, []byte("from-file on\nraised 25%\n"), 0o600))
	oldFlags := flags.New()
	_, err := oldFlags.LoadFile(file, "boot")
	require.NoError(t, err)
	bob, err := oldFlags.Set("raised", flags.Percent(100), "bob")
	require.NoError(t, err)
	_, err = oldFlags.Set("admin-only", flags.On, "carol")
	require.NoError(t, err)

	old, _, _, _ := oldSide(t, dir)
	old.h.cfg.flags = oldFlags
	reply, done := old.upgrade(t)

	// The operator edits the file; the new process loads it, then
	// receives.
	require.NoError(t, os.WriteFile(file, []byte("from-file off\nraised 25%\n"), 0o600))
	newFlags := flags.New()
	_, err = newFlags.LoadFile(file, "boot")
	require.NoError(t, err)
	nw := successorOf(t, old, dir, WithCodes(sessionCode("v1")), WithHandoffFlags(newFlags))
	got, err := nw.h.Receive(ctx)
	require.NoError(t, err)

	st, ok := newFlags.Get("raised")
	require.True(t, ok)
	require.Equal(t, flags.Percent(100), st.Value)
	require.Equal(t, "bob", st.Who)
	require.True(t, st.When.Equal(bob.When), "when: %v, set at %v", st.When, bob.When)
	require.Equal(t, flags.Percent(25), st.Old)
	require.False(t, st.File)
	st, _ = newFlags.Get("from-file")
	require.Equal(t, flags.Off, st.Value, "the file's value is the new file's")
	for flag, want := range map[string]bool{"admin-only": true, "raised": true, "from-file": false} {
		on, err := fsm.Call(ctx, got.Machines["m1"], AskFlag{Name: flag})
		require.NoError(t, err)
		require.Equal(t, want, on, flag)
	}
	require.Contains(t, nw.log.String(), "feature flags taken over")

	reply <- nil
	require.NoError(t, <-done)
	require.Regexp(t, `state handed over.* flags=3`, old.log.String())
	for _, c := range got.Conns {
		require.NoError(t, c.Conn.Close())
	}
}

// A handoff writes the oldest format that carries what it has: 1 with
// nothing more than connections, 2 with a release handler's versions, 3
// with machines (their timeouts' capture instant) or a flag set.
func TestHandoffFormatWritten(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "handoff")
	s := newSide(t, dir, false)
	require.Equal(t, uint16(1), s.h.format())
	s.h.cfg.release = &ReleaseHandler{}
	require.Equal(t, uint16(2), s.h.format())
	s.h.cfg.release = nil
	s.h.cfg.flags = flags.New()
	require.Equal(t, uint16(3), s.h.format())
	s.h.cfg.flags = nil
	ref, err := fsm.Start(context.Background(), s.sys, sessionCode("v1"))
	require.NoError(t, err)
	require.NoError(t, s.h.Manage("m", ref))
	require.Equal(t, uint16(3), s.h.format())
}

// A new process of a build of format 1 reads phase one as format 1 too:
// before, phase one was written in the newest format whatever the header
// said, and such a build refused it.
func TestHandoffPhaseOneInTheHeadersFormat(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "handoff")
	old := newSide(t, dir, false)
	require.NoError(t, old.r.Ready())
	_, server := tcpPair(t)
	require.NoError(t, old.h.Adopt("c1", Conn{Conn: server,
		Pause: func(context.Context) ([]byte, error) { return nil, nil }, Resume: func() {}}))
	reply, done := old.upgrade(t)
	nc, err := net.Dial("unix", old.h.socketPath(old.r.pid))
	require.NoError(t, err)
	c := nc.(*net.UnixConn)
	v, err := handoff.ReadHeader(c, handoff.Version)
	require.NoError(t, err)
	require.Equal(t, uint16(1), v)
	require.NoError(t, handoff.WriteAnswer(c, handoff.Accept, ""))
	body, files, err := handoff.ReadState(c)
	require.NoError(t, err)
	for _, f := range files {
		require.NoError(t, f.Close())
	}
	require.Equal(t, byte(0x92), body[0], "a State of format 1: two fields")
	require.NoError(t, c.Close())
	reply <- fmt.Errorf("child exited")
	require.Error(t, <-done)
}

// A new process of a build of format 2 cannot take machines over from a
// Handoff that writes format 3: it refuses the header before anything is
// paused, and the old process serves on. With nothing that needs format 3
// it takes over.
func TestHandoffNewProcessOfFormat2(t *testing.T) {
	ctx := context.Background()
	t.Run("machines", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "handoff")
		old, oldRef, _, resumed := oldSide(t, dir)
		reply, done := old.upgrade(t)
		nw := successorOf(t, old, dir, WithCodes(sessionCode("v1")))
		nw.h.cfg.format = 2
		_, err := nw.h.Receive(ctx)
		require.ErrorIs(t, err, handoff.ErrVersion)
		reply <- fmt.Errorf("child exited")
		require.Error(t, <-done)
		require.Contains(t, old.log.String(), "unsupported format version: 3 (this build reads 1 to 2)")
		require.Zero(t, resumed.Load(), "nothing was paused")
		_, err = fsm.Call(ctx, oldRef, Line{Text: "z"})
		require.NoError(t, err, "the machine serves on")
	})
	t.Run("connections only", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "handoff")
		old := newSide(t, dir, false)
		require.NoError(t, old.r.Ready())
		_, server := tcpPair(t)
		require.NoError(t, old.h.Adopt("c1", Conn{Conn: server,
			Pause: func(context.Context) ([]byte, error) { return []byte("x"), nil }, Resume: func() {}}))
		reply, done := old.upgrade(t)
		nw := successorOf(t, old, dir)
		nw.h.cfg.format = 2
		got, err := nw.h.Receive(ctx)
		require.NoError(t, err)
		require.Equal(t, []byte("x"), got.Conns["c1"].Unread)
		reply <- nil
		require.NoError(t, <-done)
		require.NoError(t, got.Conns["c1"].Conn.Close())
	})
}

// The wire form of a timeout keeps whether it had fired and its place,
// and counts its time left from the state's capture instant.
func TestHandoffTimeoutWire(t *testing.T) {
	at := time.Now()
	img := fsm.Image{Snapshot: fsm.Snapshot{Machine: "m", Version: "v1", State: "s"}, Captured: at.Add(-time.Second),
		Timeouts: []fsm.TimeoutImage{
			{Kind: fsm.KindTimeout, Name: "a", Remaining: 0, Fired: true, Ahead: 2},
			{Kind: fsm.KindStateTimeout, Remaining: 5 * time.Second},
		},
	}
	w := toWire("k", img, at)
	require.Equal(t, int64(3), w.Timeouts[0].Fired)
	require.Equal(t, int64(-time.Second), w.Timeouts[0].Remaining)
	require.Equal(t, int64(4*time.Second), w.Timeouts[1].Remaining)
	back := fromWire(w, 500*time.Millisecond)
	require.Equal(t, fsm.TimeoutImage{Kind: fsm.KindTimeout, Name: "a", Remaining: -1500 * time.Millisecond, Fired: true, Ahead: 2}, back.Timeouts[0])
	require.Equal(t, fsm.TimeoutImage{Kind: fsm.KindStateTimeout, Remaining: 3500 * time.Millisecond}, back.Timeouts[1])
}

// A carried flag whose value does not parse fails the handoff, naming it.
func TestHandoffBadCarriedFlag(t *testing.T) {
	_, err := fromWireFlags([]handoff.Flag{{Flag: "ok", Value: "on", Old: "off"}, {Flag: "x", Value: "maybe", Old: "off"}})
	require.ErrorIs(t, err, handoff.ErrFormat)
	require.ErrorContains(t, err, `flag "x"`)
	require.ErrorIs(t, err, flags.ErrBadValue)
}

// The new process takes the state only from its parent: a socket put in
// the place of the previous process's by another process (here this one,
// posing as a parent it is not) is refused, naming the process that
// listens on it. Before, the new process read whatever it was sent there.
func TestHandoffSocketOfAnotherProcess(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "handoff")
	nw := newSide(t, dir, true)
	const parent = 1 // init: not this process
	nw.h.cfg.parentPID = func() int { return parent }
	ln, err := net.Listen("unix", nw.h.socketPath(parent))
	require.NoError(t, err)
	defer func() { require.NoError(t, ln.Close()) }()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_ = handoff.WriteHeader(c, handoff.Version) // a state that would be taken
			defer func() { _ = c.Close() }()
			_, _ = c.Read(make([]byte, 1))
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = nw.h.Receive(ctx)
	require.ErrorIs(t, err, ErrHandoff)
	require.ErrorContains(t, err, fmt.Sprintf("the handoff socket is not the previous process's (1): process %d listens on it", os.Getpid()))
}
