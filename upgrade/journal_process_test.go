package upgrade_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
// runs an upgrade (or a rollback) of 100 machines and stops forever at the
// phase named by journalChildStop, once it has said so by creating the
// file "here" in the journal directory:
//
//   - "begun": the begin record is written, no machine is changed (every
//     machine is busy in an event that never ends, so none can be
//     suspended);
//   - "cut": in the middle of the cut, in a machine's UPGRADE;
//   - "changed": every machine changed, the commit not yet written;
//   - "committed": after the commit, not confirmed;
//   - "confirmed": after the confirm;
//   - "rollback": v2 confirmed, then in the middle of a rollback to v1, in
//     a machine's downgrade.
func TestJournalChild(t *testing.T) {
	dir := os.Getenv(journalChildDir)
	if dir == "" {
		t.Skip("the child process of TestJournalKilledMidUpgrade")
	}
	stop := os.Getenv(journalChildStop)
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
	never := make(chan struct{})
	v1 := counterV1()
	fsm.On(v1, "on", func(_ Block, d CountV1) fsm.Result[CountV1] { <-never; return fsm.Keep(d) })
	v2 := fsm.Define("counter", "v2", "on", CountV2{})
	v2.OnUpgrade(func(from, state string, raw msgpack.RawMessage) (string, CountV2, error) {
		if stop == "cut" {
			here()
		}
		var d CountV2
		return state, d, msgpack.Unmarshal(raw, &d)
	})
	v2.OnDowngrade(func(to, state string, d CountV2) (string, any, error) {
		if stop == "rollback" {
			here()
		}
		return state, CountV1{N: d.N}, nil
	})
	require.NoError(t, h.Register(v1))
	require.NoError(t, h.Register(v2))
	refs := startN(t, h, 100)
	if stop == "begun" {
		for _, ref := range refs {
			require.NoError(t, fsm.Cast(ref, Block{}))
		}
		go func() {
			for {
				b, err := os.ReadFile(filepath.Join(dir, "release.journal"))
				if err == nil && strings.Contains(string(b), `"op":"begin"`) {
					here()
				}
				time.Sleep(time.Millisecond) // polling a file another goroutine writes
			}
		}()
	}
	_, err = h.Upgrade(ctx, "counter", "v2", upgrade.WithProgress(func(p upgrade.Progress) {
		if p.Phase == "changed" && stop == "changed" || p.Phase == "resumed" && stop == "committed" {
			here()
		}
	}))
	require.NoError(t, err)
	require.NoError(t, h.Confirm(ctx, "counter"))
	if stop == "confirmed" {
		here()
	}
	_, err = h.Rollback(ctx, "counter")
	require.NoError(t, err)
	t.Fatal("not reached")
}

// Block is an event that the child's v1 handles forever.
type Block struct{}

// TestJournalKilledMidUpgrade kills a real host process (this test binary,
// running TestJournalChild) at each phase of an upgrade and of a
// rollback, and starts a handler on its journal: it comes back on the
// version doc/upgrades.md promises, and says what it did.
func TestJournalKilledMidUpgrade(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	undone := &upgrade.Recovery{Machine: "counter", Kind: "upgrade", From: "v1", To: "v2", Outcome: upgrade.OutcomeUndone, Current: "v1"}
	tests := []struct {
		stop    string
		want    *upgrade.Recovery // nil: nothing to recover
		current string
	}{
		{"begun", undone, "v1"},
		{"cut", undone, "v1"},
		{"changed", undone, "v1"},
		{"committed", &upgrade.Recovery{Machine: "counter", Kind: "upgrade", From: "v1", To: "v2", Outcome: upgrade.OutcomeRevertedToPermanent, Current: "v1"}, "v1"},
		{"confirmed", nil, "v2"},
		{"rollback", &upgrade.Recovery{Machine: "counter", Kind: "rollback", From: "v2", To: "v1", Outcome: upgrade.OutcomeResumed, Current: "v1"}, "v1"},
	}
	for _, tt := range tests {
		t.Run(tt.stop, func(t *testing.T) {
			t.Parallel() // each waits for its own process
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestJournalChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), journalChildDir+"="+dir, journalChildStop+"="+tt.stop)
			require.NoError(t, cmd.Start())
			require.Eventually(t, func() bool {
				_, err := os.Stat(filepath.Join(dir, "here"))
				return err == nil
			}, 60*time.Second, 10*time.Millisecond, "the child to reach its stop") // real time: another process
			require.NoError(t, cmd.Process.Kill())
			require.Error(t, cmd.Wait()) // killed

			for i := range 2 {
				sys := actor.NewSystem(actor.WithLogger(quiet()))
				h, err := upgrade.NewReleaseHandler(sys, upgrade.WithReleaseLogger(quiet()), upgrade.WithJournal(dir))
				require.NoError(t, err)
				require.NoError(t, h.Register(counterV1()))
				require.NoError(t, h.Register(counterV2(nil, nil)))
				if tt.want == nil || i == 1 {
					// The second start finds the journal compacted to what
					// the first decided: nothing more to recover.
					require.Empty(t, h.Recovered())
				} else {
					require.Equal(t, []upgrade.Recovery{*tt.want}, h.Recovered())
				}
				st := status(t, h)
				require.Equal(t, tt.current, st.Current)
				require.Equal(t, tt.current, st.Permanent)
				ref, err := h.Start(context.Background(), "counter")
				require.NoError(t, err)
				require.Equal(t, tt.current, infos(t, []actor.Ref{ref})[0].Version)
				require.NoError(t, sys.Shutdown(context.Background()))
				require.NoError(t, h.Close(context.Background()))
			}
		})
	}
}
