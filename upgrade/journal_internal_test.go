package upgrade

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A journal written by a process that died: upgrades, a confirm, a
// rollback, a move of some machines only, and no end to the last begin.
var journalLines = []string{
	`{"op":"state","machine":"phone","to":"v1","permanent":"v1"}`,
	`{"op":"begin","machine":"phone","kind":"upgrade","from":"v1","to":"v2"}`,
	`{"op":"commit","machine":"phone","from":"v1","to":"v2","current":"v2","permanent":"v1"}`,
	`{"op":"confirm","machine":"phone","to":"v2"}`,
	`{"op":"begin","machine":"phone","kind":"rollback","from":"v2","to":"v1"}`,
	`{"op":"commit","machine":"phone","from":"v2","to":"v1","current":"v1","permanent":"v1"}`,
	`{"op":"begin","machine":"phone","kind":"upgrade","from":"v1","to":"v2"}`,
	`{"op":"commit","machine":"phone","from":"v1","to":"v2","current":"v1","permanent":"v1"}`,
	`{"op":"begin","machine":"phone","kind":"upgrade","from":"v1","to":"v3"}`,
	`{"op":"commit","machine":"phone","from":"v1","to":"v3","current":"v3","permanent":"v1"}`,
	`{"op":"begin","machine":"phone","kind":"upgrade","from":"v3","to":"v4"}`,
}

// TestJournalTruncatedAtEveryBoundary replays the journal cut after each
// record, and in the middle of each: what a host killed at that point
// leaves, and what the next start decides.
func TestJournalTruncatedAtEveryBoundary(t *testing.T) {
	type want struct {
		current string // and permanent, after the recovery
		outcome string // of the one recovery, if any
	}
	wants := []want{
		{},                                 // nothing written
		{current: "v1"},                    // state
		{"v1", OutcomeUndone},              // begin v1 -> v2: killed before its commit
		{"v1", OutcomeRevertedToPermanent}, // committed, not confirmed
		{current: "v2"},                    // confirmed
		{"v1", OutcomeResumed},             // begin rollback v2 -> v1: resumed
		{current: "v1"},                    // rollback committed: v1 permanent again
		{"v1", OutcomeUndone},              // begin v1 -> v2 of some machines
		{current: "v1"},                    // committed, current unchanged
		{"v1", OutcomeUndone},              // begin v1 -> v3
		{"v1", OutcomeRevertedToPermanent}, // committed v3, not confirmed
		{"v1", OutcomeUndone},              // begin v3 -> v4 from an unconfirmed v3
	}
	require.Len(t, wants, len(journalLines)+1)
	for n := 0; n <= len(journalLines); n++ {
		var full bytes.Buffer
		for _, l := range journalLines[:n] {
			full.WriteString(l + "\n")
		}
		cases := map[string][]byte{"whole": full.Bytes()}
		if n < len(journalLines) {
			torn := append(bytes.Clone(full.Bytes()), journalLines[n][:len(journalLines[n])/2]...)
			cases["torn"] = torn
		}
		for name, b := range cases {
			rp, err := decodeJournal(b)
			require.NoError(t, err, "%d records, %s", n, name)
			if name == "torn" {
				require.Len(t, rp.dropped, 1, "the torn line is reported")
				require.Contains(t, rp.dropped[0].Detail, fmt.Sprintf("line %d (", n+1))
			} else {
				require.Empty(t, rp.dropped)
			}
			w := wants[n]
			st := rp.state["phone"]
			require.Equal(t, journalState{w.current, w.current}, st, "%d records, %s", n, name)
			if w.outcome == "" {
				require.Empty(t, rp.recoveries, "%d records, %s", n, name)
			} else {
				require.Len(t, rp.recoveries, 1, "%d records, %s", n, name)
				require.Equal(t, w.outcome, rp.recoveries[0].Outcome, "%d records, %s", n, name)
				require.Equal(t, w.current, rp.recoveries[0].Current, "%d records, %s", n, name)
			}
		}
	}
}

// TestJournalRollbackOfUnconfirmed: a rollback from an unconfirmed
// version to another unconfirmed one, cut short, comes back on the
// permanent version; a commit without "current" (an older journal) takes
// "to".
func TestJournalRollbackOfUnconfirmed(t *testing.T) {
	rp, err := decodeJournal([]byte(`{"op":"state","machine":"m","to":"v1","permanent":"v1"}
{"op":"commit","machine":"m","from":"v1","to":"v2","permanent":"v1"}
{"op":"commit","machine":"m","from":"v2","to":"v3","permanent":"v1"}
{"op":"begin","machine":"m","kind":"rollback","from":"v3","to":"v2"}
`))
	require.NoError(t, err)
	require.Equal(t, []Recovery{{Machine: "m", Kind: "rollback", From: "v3", To: "v2", Outcome: OutcomeResumed, Current: "v1"}}, rp.recoveries)

	rp, err = decodeJournal([]byte(`{"op":"commit","machine":"m","from":"v1","to":"v2","permanent":"v1"}
`))
	require.NoError(t, err)
	require.Equal(t, []Recovery{{Machine: "m", Kind: "upgrade", From: "v1", To: "v2", Outcome: OutcomeRevertedToPermanent, Current: "v1"}}, rp.recoveries)
}

// TestJournalConfirmEndsABeginWithoutCommit: a move whose commit could not
// be written (ErrNotJournaled: it took effect) leaves its begin without an
// end; the Confirm that follows, once the journal can be written again,
// says the current version is permanent, and no move runs during a
// Confirm: the begin has ended. Before, the next start reported the
// confirmed upgrade as "undone" (and a compaction while running kept the
// begin), though the host came back on the confirmed version.
func TestJournalConfirmEndsABeginWithoutCommit(t *testing.T) {
	for _, kind := range []string{"upgrade", "rollback", "end-sessions"} {
		t.Run(kind, func(t *testing.T) {
			rp, err := decodeJournal([]byte(`{"op":"state","machine":"m","to":"v1","permanent":"v1"}
{"op":"begin","machine":"m","kind":"` + kind + `","from":"v1","to":"v2"}
{"op":"confirm","machine":"m","to":"v2"}
`))
			require.NoError(t, err)
			require.Empty(t, rp.recoveries)
			require.Empty(t, rp.pending)
			require.Equal(t, journalState{"v2", "v2"}, rp.state["m"])
		})
	}
}

// TestJournalDropsGarbage: a line that is not a whole record is dropped
// and reported, the records around it kept.
func TestJournalDropsGarbage(t *testing.T) {
	tests := map[string]string{
		"not json":   "hello\n",
		"no machine": `{"op":"begin"}` + "\n",
		"unknown op": `{"op":"explode","machine":"m"}` + "\n",
		"empty line": "\n",
	}
	for name, bad := range tests {
		t.Run(name, func(t *testing.T) {
			rp, err := decodeJournal([]byte(journalLines[0] + "\n" + bad + journalLines[3] + "\n"))
			require.NoError(t, err)
			require.Len(t, rp.dropped, 1)
			require.Equal(t, OutcomeDropped, rp.dropped[0].Outcome)
			require.Contains(t, rp.dropped[0].Detail, "line 2 (")
			require.Equal(t, journalState{"v2", "v2"}, rp.state["phone"], "the records before and after it are kept")
		})
	}
}

func FuzzJournalDecode(f *testing.F) {
	var all bytes.Buffer
	for _, l := range journalLines {
		all.WriteString(l + "\n")
		f.Add(all.Bytes())
	}
	f.Add([]byte("{}\n{\n"))
	f.Add([]byte(`{"op":"begin","machine":"m","kind":"end-sessions","from":"v2","to":"v1"}` + "\n"))
	f.Add([]byte(`{"op":"begin","machine":"m","kind":"rollback","from":"v1","to":"v1"}` + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rp, err := decodeJournal(b)
		if err != nil {
			require.ErrorIs(t, err, ErrBadJournal)
			return
		}
		for _, r := range rp.recoveries {
			require.NotEmpty(t, r.Machine)
		}
		for _, r := range rp.dropped {
			require.Equal(t, OutcomeDropped, r.Outcome)
			require.NotEmpty(t, r.Detail)
		}
	})
}

// The new process of a binary restart opens the journal that the old one
// writes (WithJournal names one directory for both) and compacts it, a new
// file renamed over the old, while the old process runs on: it waits for a
// rollout in progress before the handoff, or serves on after a failed one.
// What the old process records from then on must reach the file the next
// start reads. Before, it went to the unlinked file: here the commit and
// the confirm of v2 were lost, and the next start came back on v1 with an
// upgrade "undone" that had been confirmed.
func TestJournalRecordsAfterSuccessorCompacts(t *testing.T) {
	dir := t.TempDir()
	old, _, err := openJournal(dir)
	require.NoError(t, err)
	defer func() { require.NoError(t, old.close()) }()
	require.NoError(t, old.append(record{Op: recState, Machine: "phone", To: "v1", Permanent: "v1"}))
	require.NoError(t, old.append(record{Op: recBegin, Machine: "phone", Kind: "upgrade", From: "v1", To: "v2"}))

	// SIGHUP during the rollout: the new process opens the journal, and
	// then fails (its handoff, or before Ready).
	nw, rp, err := openJournal(dir)
	require.NoError(t, err)
	require.Len(t, rp.recoveries, 1, "the rollout in progress looks undone to it")
	require.NoError(t, nw.close())

	// The old process finishes its rollout and confirms it.
	require.NoError(t, old.append(record{Op: recCommit, Machine: "phone", From: "v1", To: "v2", Current: "v2", Permanent: "v1"}))
	require.NoError(t, old.append(record{Op: recConfirm, Machine: "phone", To: "v2"}))

	// The next start (a crash of the old process, say) reads it.
	next, rp, err := openJournal(dir)
	require.NoError(t, err)
	require.NoError(t, next.close())
	require.Empty(t, rp.recoveries)
	require.Equal(t, journalState{current: "v2", permanent: "v2"}, rp.state["phone"])

	// A journal file removed under a running process is made again.
	require.NoError(t, os.Remove(filepath.Join(dir, journalFile)))
	require.NoError(t, old.append(record{Op: recState, Machine: "phone", To: "v2", Permanent: "v2"}))
	b, err := os.ReadFile(filepath.Join(dir, journalFile))
	require.NoError(t, err)
	require.Equal(t, `{"op":"state","machine":"phone","to":"v2","permanent":"v2"}`+"\n", string(b))
}

// TestJournalRecordRacingTheCompaction: the old process of a binary
// restart appends records (it finishes a rollout and confirms it) after
// the new one has read the journal and before its compacted file replaces
// it. Those records must reach the file the next start reads. Before,
// they were written, synced and checked against the path (still the old
// file) in that window, and the rename then threw them away: the next
// start came back on v1, the confirmed v2 lost.
func TestJournalRecordRacingTheCompaction(t *testing.T) {
	dir := t.TempDir()
	old, _, err := openJournal(dir)
	require.NoError(t, err)
	defer func() { require.NoError(t, old.close()) }()
	require.NoError(t, old.append(record{Op: recState, Machine: "phone", To: "v1", Permanent: "v1"}))
	require.NoError(t, old.append(record{Op: recBegin, Machine: "phone", Kind: "upgrade", From: "v1", To: "v2"}))

	nw, rp, err := openJournalHook(dir, journalHooks{beforeRename: func() {
		require.NoError(t, old.append(record{Op: recCommit, Machine: "phone", From: "v1", To: "v2", Current: "v2", Permanent: "v1"}))
		require.NoError(t, old.append(record{Op: recConfirm, Machine: "phone", To: "v2"}))
	}})
	require.NoError(t, err)
	require.Len(t, rp.recoveries, 1, "what it read: the rollout in progress, undone")
	require.NoError(t, nw.append(record{Op: recBegin, Machine: "other", Kind: "upgrade", From: "a", To: "b"}))
	require.NoError(t, nw.close())

	next, rp, err := openJournal(dir)
	require.NoError(t, err)
	require.NoError(t, next.close())
	require.Empty(t, rp.dropped)
	require.Equal(t, journalState{current: "v2", permanent: "v2"}, rp.state["phone"], "the commit and confirm written during the compaction")
	require.Equal(t, []Recovery{{Machine: "other", Kind: "upgrade", From: "a", To: "b", Outcome: OutcomeUndone, Current: "a"}}, rp.recoveries,
		"the new process's own record, after them")
}

// TestJournalCompactsWhileRunning: a process that runs for months moves
// machines over and over (a canary's cohorts, phased selectors, upgrades
// and rollbacks), three records a move. The journal is compacted while it
// runs once it passes a size, and replays to the same decision as the
// whole history would: the current and permanent version of each machine
// and a begin still open. Before, it was compacted only at start, and
// grew by every record for the life of the process.
func TestJournalCompactsWhileRunning(t *testing.T) {
	dir := t.TempDir()
	j, _, err := openJournal(dir)
	require.NoError(t, err)
	defer func() { require.NoError(t, j.close()) }()
	j.compactAt = 1024

	var whole bytes.Buffer // every record, as an uncompacted journal holds them
	add := func(rec record) {
		t.Helper()
		require.NoError(t, j.append(rec))
		line, err := json.Marshal(rec)
		require.NoError(t, err)
		whole.Write(append(line, '\n'))
	}
	path := filepath.Join(dir, journalFile)
	var largest int64
	for i := range 151 {
		for _, m := range []string{"phone", "line"} {
			from, to := fmt.Sprintf("v%d", i), fmt.Sprintf("v%d", i+1)
			add(record{Op: recBegin, Machine: m, Kind: "upgrade", From: from, To: to})
			add(record{Op: recCommit, Machine: m, From: from, To: to, Current: to, Permanent: from})
			if m == "phone" || i%2 == 1 {
				add(record{Op: recConfirm, Machine: m, To: to})
			}
		}
		fi, err := os.Stat(path)
		require.NoError(t, err)
		largest = max(largest, fi.Size())
	}
	add(record{Op: recBegin, Machine: "phone", Kind: "rollback", From: "v151", To: "v150"})
	require.Less(t, largest, int64(1024+1024), "bounded by the size it compacts at, and a move")

	b, err := os.ReadFile(path)
	require.NoError(t, err)
	got, err := decodeJournal(b)
	require.NoError(t, err)
	want, err := decodeJournal(whole.Bytes())
	require.NoError(t, err)
	require.Equal(t, want.state, got.state)
	require.Equal(t, want.recoveries, got.recoveries)
	require.Equal(t, journalState{"v150", "v150"}, got.state["phone"], "the rollback left open is resumed")
	require.Equal(t, journalState{"v150", "v150"}, got.state["line"], "its last upgrade, to v151, was not confirmed")
	require.Len(t, got.recoveries, 2)
}
