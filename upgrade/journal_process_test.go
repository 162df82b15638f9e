package upgrade_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/upgrade"
)

// The environment of TestJournalChild: the journal directory, and where
// the child stops to be killed.
const (
	journalChildDir  = "HOTLINE_JOURNAL_CHILD_DIR"
	journalChildStop = "HOTLINE_JOURNAL_CHILD_STOP"
)

// TestJournalChild is the host that TestJournalKilledMidUpgrade kills: it
// upgrades 100 machines and stops forever, in the middle of the cut (in a
// machine's UPGRADE) or after the commit, once it has said so by creating
// the file "here" in the journal directory.
func TestJournalChild(t *testing.T) {
	dir := os.Getenv(journalChildDir)
	if dir == "" {
		t.Skip("the child process of TestJournalKilledMidUpgrade")
	}
	here := func() {
		if err := os.WriteFile(filepath.Join(dir, "here"), nil, 0o600); err != nil {
			panic(err)
		}
		select {} // until killed
	}
	ctx := context.Background()
	sys := actor.NewSystem(actor.WithLogger(quiet()))
	h, err := upgrade.NewReleaseHandler(sys, upgrade.WithReleaseLogger(quiet()), upgrade.WithJournal(dir))
	require.NoError(t, err)
	v2 := fsm.Define("counter", "v2", "on", CountV2{})
	v2.OnUpgrade(func(from, state string, raw msgpack.RawMessage) (string, CountV2, error) {
		if os.Getenv(journalChildStop) == "cut" {
			here()
		}
		var d CountV2
		return state, d, msgpack.Unmarshal(raw, &d)
	})
	require.NoError(t, h.Register(counterV1()))
	require.NoError(t, h.Register(v2))
	startN(t, h, 100)
	_, err = h.Upgrade(ctx, "counter", "v2", upgrade.WithProgress(func(p upgrade.Progress) {
		if p.Phase == "resumed" && os.Getenv(journalChildStop) == "committed" {
			here()
		}
	}))
	require.NoError(t, err)
	t.Fatal("not reached")
}

// TestJournalKilledMidUpgrade kills a real host process (this test binary,
// running TestJournalChild) in the middle of an upgrade, and after one
// committed but unconfirmed, and starts a handler on its journal: the
// upgrade is undone, or reverted to the permanent version, and the handler
// says which.
func TestJournalKilledMidUpgrade(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	tests := []struct{ stop, outcome string }{
		{"cut", "undone"},
		{"committed", "reverted to permanent"},
	}
	for _, tt := range tests {
		t.Run(tt.stop, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestJournalChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), journalChildDir+"="+dir, journalChildStop+"="+tt.stop)
			require.NoError(t, cmd.Start())
			require.Eventually(t, func() bool {
				_, err := os.Stat(filepath.Join(dir, "here"))
				return err == nil
			}, 30*time.Second, 10*time.Millisecond, "the child to reach its stop") // real time: another process
			require.NoError(t, cmd.Process.Kill())
			require.Error(t, cmd.Wait()) // killed

			_, h := newRelease(t, upgrade.WithJournal(dir))
			require.Equal(t, []upgrade.Recovery{{Machine: "counter", Kind: "upgrade", From: "v1", To: "v2", Outcome: tt.outcome}}, h.Recovered())
			st := status(t, h)
			require.Equal(t, "v1", st.Current)
			require.Equal(t, "v1", st.Permanent)
			ref, err := h.Start(context.Background(), "counter")
			require.NoError(t, err)
			require.Equal(t, "v1", infos(t, []actor.Ref{ref})[0].Version)
		})
	}
}
