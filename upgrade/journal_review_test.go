package upgrade_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/upgrade"
)

// TestJournalGarbageKeepsWholeRecords: a journal whose tail a crash or a
// full disk left as garbage (zeros the filesystem wrote for a lost block,
// a record cut short and the next one appended to it) still starts the
// host: every whole record is kept, and each line dropped is reported by
// Recovered, naming it. Before, NewReleaseHandler refused the journal
// (ErrBadJournal), and the host could not start until someone removed
// the file, losing the confirmed version with it.
func TestJournalGarbageKeepsWholeRecords(t *testing.T) {
	ctx := context.Background()
	confirmed := `{"op":"state","machine":"counter","to":"v1","permanent":"v1"}` + "\n" +
		`{"op":"begin","machine":"counter","kind":"upgrade","from":"v1","to":"v2"}` + "\n" +
		`{"op":"commit","machine":"counter","from":"v1","to":"v2","current":"v2","permanent":"v1"}` + "\n" +
		`{"op":"confirm","machine":"counter","to":"v2"}` + "\n"
	tests := []struct {
		name    string
		tail    string
		current string
		detail  string
	}{
		{"zeros", "\x00\x00\x00\x00\x00\x00\x00\x00\n", "v2", `line 5 (8 bytes, "\x00\x00\x00\x00\x00\x00\x00\x00"): not a record`},
		{"not json", "hello\n", "v2", `line 5 (5 bytes, "hello"): not a record`},
		{"unknown op", `{"op":"explode","machine":"counter"}` + "\n", "v2", `line 5 (36 bytes`},
		{"no machine", `{"op":"begin"}` + "\n", "v2", "line 5 (14 bytes, \"{\\\"op\\\":\\\"begin\\\"}\"): no machine"},
		{"torn", `{"op":"begin","machine":"coun`, "v2", "line 5 (29 bytes"},
		{
			// A begin cut short by a full disk, then the next move's whole
			// begin appended to it: that begin (v2 -> v3, never committed)
			// is kept, and undone.
			"cut short, then a record", `{"op":"begin","machine":"cou` + `{"op":"begin","machine":"counter","kind":"upgrade","from":"v2","to":"v3"}` + "\n",
			"v2", `line 5 (28 bytes, "{\"op\":\"begin\",\"machine\":\"cou"): not a record, before a whole one`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "release.journal"), []byte(confirmed+tt.tail), 0o600))
			_, h := newRelease(t, upgrade.WithJournal(dir))
			rec := h.Recovered()
			require.NotEmpty(t, rec)
			require.Equal(t, upgrade.OutcomeDropped, rec[0].Outcome)
			require.Equal(t, "journal", rec[0].Kind)
			require.Contains(t, rec[0].Detail, tt.detail)
			st := status(t, h)
			require.Equal(t, tt.current, st.Current, "the confirmed v2 is kept")
			require.Equal(t, tt.current, st.Permanent)
			if tt.name == "cut short, then a record" {
				require.Equal(t, []upgrade.Recovery{{Machine: "counter", Kind: "upgrade", From: "v2", To: "v3", Outcome: upgrade.OutcomeUndone, Current: "v2"}}, rec[1:])
			} else {
				require.Len(t, rec, 1)
			}
			require.NoError(t, h.Close(ctx))

			// The compacted journal holds the whole records only: the next
			// start drops nothing more.
			_, h = newRelease(t, upgrade.WithJournal(dir))
			require.Empty(t, h.Recovered())
			require.Equal(t, tt.current, status(t, h).Current)
		})
	}
}

// TestJournalPartialRollbackCutShort: a rollback of some machines (a
// selector) leaves the current and permanent version as they are when it
// commits; a host that died in the middle of it must not come back on the
// version it rolled those machines back to. Before, its begin looked like
// that of a rollback of every machine, which a restart resumes: the
// confirmed v2 was abandoned for v1.
func TestJournalPartialRollbackCutShort(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	_, h := newRelease(t, upgrade.WithJournal(dir))
	startN(t, h, 4)
	_, err := h.Upgrade(ctx, "counter", "v2")
	require.NoError(t, err)
	require.NoError(t, h.Confirm(ctx, "counter"))
	rep, err := h.Rollback(ctx, "counter", upgrade.WithSelector(upgrade.Selector{IDs: []string{"m0"}}))
	require.NoError(t, err)
	require.Equal(t, "ok", rep.Result)
	require.Equal(t, "v2", status(t, h).Current, "a rollback of some machines leaves the current version")
	require.NoError(t, h.Close(ctx))

	// What a host killed before the rollback's commit leaves: the journal
	// up to its begin.
	path := filepath.Join(dir, "release.journal")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	i := bytes.LastIndex(b, []byte(`{"op":"begin"`))
	require.Positive(t, i)
	j := bytes.IndexByte(b[i:], '\n')
	require.Positive(t, j)
	require.NoError(t, os.WriteFile(path, b[:i+j+1], 0o600))

	_, h = newRelease(t, upgrade.WithJournal(dir))
	st := status(t, h)
	require.Equal(t, "v2", st.Current, "recovered: %+v", h.Recovered())
	require.Equal(t, "v2", st.Permanent)
}
