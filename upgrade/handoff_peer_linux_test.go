package upgrade

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// The successor check reads a process's parent in /proc: a child of this
// process is one, another process is not, and without a procfs to read
// (not mounted, as in some containers and chroots) the check cannot be
// made: it says so (errNoPeerCred), and the handoff goes on unchecked, as
// on a system without peer credentials. Before, it refused every process,
// the real new process too, as "not a child of this one": no handoff
// could succeed there, where one did before the peer check.
func TestChildOf(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	ok, err := childOf("/proc", cmd.Process.Pid)
	require.NoError(t, err)
	require.True(t, ok, "a child")
	ok, err = childOf("/proc", os.Getppid())
	require.NoError(t, err)
	require.False(t, ok, "this process's parent")
	ok, err = childOf("/proc", 1<<30)
	require.NoError(t, err)
	require.False(t, ok, "no such process")

	_, err = childOf(filepath.Join(t.TempDir(), "proc"), cmd.Process.Pid)
	require.ErrorIs(t, err, errNoPeerCred)
	require.ErrorContains(t, err, "proc")
}

// Where the successor cannot be checked, the handoff takes the first
// process that connects (logged), as it did before the peer check.
func TestHandoffSuccessorUnchecked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "handoff")
	old, _, _, _ := oldSide(t, dir)
	old.h.cfg.successor = func(int) (bool, error) { return false, errNoPeerCred }
	reply, done := old.upgrade(t)
	nw := successorOf(t, old, dir, WithCodes(sessionCode("v1")))
	got, err := nw.h.Receive(context.Background())
	require.NoError(t, err)
	require.Len(t, got.Machines, 1)
	reply <- nil
	require.NoError(t, <-done)
	require.Contains(t, old.log.String(), "not checked")
}
