package upgrade

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/fsm"
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
	nw := newSide(t, dir, true, WithCodes(sessionCode("v1")))
	nw.h.cfg.parentPID = func() int { return old.r.pid }
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
	nw := newSide(t, dir, true, WithCodes(sessionCode("v1")))
	nw.h.cfg.parentPID = func() int { return old.r.pid }
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
