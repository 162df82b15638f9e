package upgrade

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// temporaries returns the names of the files in dir that end in .tmp.
func temporaries(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.tmp"))
	require.NoError(t, err)
	for i, n := range names {
		names[i] = filepath.Base(n)
	}
	return names
}

// TestJournalCompactionsAtOnce: the old and the new process of a binary
// restart share the journal's directory, and both compact the journal
// (the new one at its start, the old one once its journal passes 1 MiB).
// Here the new one (B) starts while the old one (A) is in the middle of a
// compaction, its file written and not yet renamed over the journal. B
// must neither touch A's file nor compact until A is done, and what each
// appends afterwards must reach the journal the next start reads. Before,
// both wrote release.journal.tmp: B truncated and renamed away A's file,
// and A's rename failed; with a file of its own each but no lock, A's
// rename threw away the file B had just renamed in and appended to.
func TestJournalCompactionsAtOnce(t *testing.T) {
	dir := t.TempDir()
	seed, _, err := openJournal(dir)
	require.NoError(t, err)
	require.NoError(t, seed.append(record{Op: recState, Machine: "phone", To: "v1", Permanent: "v1"}))
	require.NoError(t, seed.close())

	bDone := make(chan error, 1)
	bWaits := make(chan struct{})
	var b *journal
	a, _, err := openJournalHook(dir, journalHooks{beforeRename: func() {
		require.Len(t, temporaries(t, dir), 1, "A's file, written")
		go func() {
			nb, _, err := openJournalHook(dir, journalHooks{lockWaits: func() { close(bWaits) }})
			if err == nil {
				b = nb
				err = b.append(record{Op: recState, Machine: "line", To: "b1", Permanent: "b1"})
			}
			bDone <- err
		}()
		// B either waits for A's compaction, or (without the lock) runs
		// through before A renames.
		select {
		case <-bWaits:
		case err := <-bDone:
			bDone <- err
		}
	}})
	require.NoError(t, err, "A's compaction")
	require.NoError(t, <-bDone, "B's start")
	require.NoError(t, a.append(record{Op: recState, Machine: "trunk", To: "a1", Permanent: "a1"}))
	require.NoError(t, a.close())
	require.NoError(t, b.close())

	next, rp, err := openJournal(dir)
	require.NoError(t, err)
	require.NoError(t, next.close())
	require.Empty(t, rp.dropped)
	require.Equal(t, map[string]journalState{
		"phone": {"v1", "v1"},
		"line":  {"b1", "b1"}, // B's, appended after its compaction
		"trunk": {"a1", "a1"}, // A's, appended after B's compaction
	}, rp.state)
	require.Empty(t, temporaries(t, dir))
}

// TestJournalCompactionFailureLeavesNoTemporary: a compaction whose
// rename fails (here: a directory has taken the journal's name) returns
// ErrBadJournal and removes its temporary file. Before, release.journal.tmp
// was left behind.
func TestJournalCompactionFailureLeavesNoTemporary(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, journalFile)
	_, _, err := openJournalHook(dir, journalHooks{beforeRename: func() {
		require.NoError(t, os.RemoveAll(path)) // none yet: a first start
		require.NoError(t, os.Mkdir(path, 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(path, "x"), nil, 0o600))
	}})
	require.ErrorIs(t, err, ErrBadJournal)
	require.Empty(t, temporaries(t, dir))
}

// TestJournalStaleTemporariesRemoved: the temporary file of a compaction
// cut short by a crash is removed at the next start (nothing else holds
// the compaction lock, so no compaction is using it). The one name every
// compaction used before is left alone: an older binary, which takes no
// lock, may be writing it. Before, a crash's temporary stayed for ever.
func TestJournalStaleTemporariesRemoved(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "release.journal.12345.tmp")
	legacy := filepath.Join(dir, "release.journal.tmp")
	other := filepath.Join(dir, "notes.tmp")
	for _, p := range []string{stale, legacy, other} {
		require.NoError(t, os.WriteFile(p, []byte(`{"op":"state","machine":"phone","to":"v9","permanent":"v9"}`+"\n"), 0o600))
	}
	j, rp, err := openJournal(dir)
	require.NoError(t, err)
	require.NoError(t, j.close())
	require.Empty(t, rp.state, "a temporary file is never read")
	require.Equal(t, []string{"notes.tmp", "release.journal.tmp"}, temporaries(t, dir))
}

// TestJournalEndOfNewSessionsRecords: the begin of the rollback that ends
// a new-sessions rollout says so ("end-sessions", from the version the
// rollout sent new machines to, to the current one), and a restart that
// finds it open resumes it on the permanent version, even with no earlier
// record of the machine (its from is not the version current at the
// begin, as other begins' is). A journal written before that kind has a
// rollback from the current version to itself for it: it is read as the
// same, and says so. Before, it was reported as a rollback from v1 to v1.
func TestJournalEndOfNewSessionsRecords(t *testing.T) {
	const state = `{"op":"state","machine":"m","to":"v1","permanent":"v1"}` + "\n"
	const ends = `{"op":"begin","machine":"m","kind":"end-sessions","from":"v2","to":"v1"}` + "\n"
	const older = `{"op":"begin","machine":"m","kind":"rollback","from":"v1","to":"v1"}` + "\n"
	want := Recovery{Machine: "m", Kind: "end-sessions", From: "v2", To: "v1", Outcome: OutcomeResumed, Current: "v1"}
	wantOlder := Recovery{Machine: "m", Kind: "end-sessions", To: "v1", Outcome: OutcomeResumed, Current: "v1",
		Detail: "an older journal's rollback from v1 to v1: the end of a new-sessions rollout, new machines back on v1 (the version it sent them to was not recorded)"}
	tests := []struct {
		name    string
		journal string
		want    Recovery
	}{
		{"end-sessions", state + ends, want},
		{"end-sessions, nothing before", ends, want},
		{"older journal", state + older, wantOlder},
		{"older journal, nothing before", older, wantOlder},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rp, err := decodeJournal([]byte(tt.journal))
			require.NoError(t, err)
			require.Empty(t, rp.dropped)
			require.Equal(t, []Recovery{tt.want}, rp.recoveries)
			require.Equal(t, journalState{"v1", "v1"}, rp.state["m"])
		})
	}
}
