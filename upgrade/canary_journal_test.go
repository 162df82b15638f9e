package upgrade_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/upgrade"
)

// A canary rollout whose journal cannot be written at a commit: the move
// took effect (ErrNotJournaled), so the verdict follows what the machines
// run. Canaries moved but not journaled are moved back (before, the verdict
// said "rolled back" and left them on the new version); the rest moved but
// not journaled is promoted, with the error (before, the canaries were
// moved back and the rest left on the new version under "rolled back").
func TestCanaryCommitNotJournaled(t *testing.T) {
	for _, tc := range []struct {
		name        string
		breakAt     int // the "changed" report (1: the canaries', 2: the rest's) after which the journal fails
		wantVerdict string
		wantOn      string // every machine's version after it
		wantCanary  bool   // the error wraps ErrCanaryFailed
	}{
		{"canaries", 1, "rolled back", "v1", true},
		{"rest", 2, "promoted", "v2", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, "release.journal")
				h := newCalc(t, upgrade.WithJournal(dir))
				refs := startCalc(t, h, []string{"m0", "m1", "m2", "m3"})
				changed := 0
				rep, err := h.Upgrade(t.Context(), "calc", "v2",
					upgrade.WithStrategy(upgrade.Canary(upgrade.CanaryCount(1), upgrade.CanaryWindow(time.Second))),
					upgrade.WithProgress(func(p upgrade.Progress) {
						switch p.Phase {
						case "changed":
							if changed++; changed == tc.breakAt {
								// A directory takes the journal's name: the
								// commit that follows cannot be written.
								require.NoError(t, os.Remove(path))
								require.NoError(t, os.Mkdir(path, 0o700))
							}
						case "verdict":
							require.NoError(t, os.RemoveAll(path)) // writable again, for a move back
						}
					}))
				require.ErrorIs(t, err, upgrade.ErrBadJournal)
				// ErrNotJournaled says the move took effect: not once moved back.
				require.Equal(t, !tc.wantCanary, errors.Is(err, upgrade.ErrNotJournaled), "%v", err)
				require.Equal(t, tc.wantCanary, errors.Is(err, upgrade.ErrCanaryFailed), "%v", err)
				require.Equal(t, tc.wantVerdict, rep.Verdict, rep.Reason)
				for id, r := range refs {
					require.Equal(t, tc.wantOn, version(t, r), "machine %s", id)
				}
				if tc.wantOn == "v1" {
					require.Zero(t, rep.Changed)
					require.Equal(t, 1, rep.RolledBack)
				} else {
					require.Equal(t, 4, rep.Changed)
				}
				stopAll(t, refs)
			})
		})
	}
}
