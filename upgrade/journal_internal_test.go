package upgrade

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// A journal written by a process that died: begin, commit (unconfirmed),
// begin again, and no end.
var journalLines = []string{
	`{"op":"state","machine":"phone","to":"v1","permanent":"v1"}`,
	`{"op":"begin","machine":"phone","kind":"upgrade","from":"v1","to":"v2"}`,
	`{"op":"commit","machine":"phone","from":"v1","to":"v2","permanent":"v1"}`,
	`{"op":"confirm","machine":"phone","to":"v2"}`,
	`{"op":"begin","machine":"phone","kind":"upgrade","from":"v2","to":"v3"}`,
	`{"op":"commit","machine":"phone","from":"v2","to":"v3","permanent":"v2"}`,
}

// TestJournalTruncatedAtEveryBoundary replays the journal cut after each
// record, and in the middle of each: what a host killed at that point
// leaves.
func TestJournalTruncatedAtEveryBoundary(t *testing.T) {
	type want struct {
		permanent string
		outcome   string // of the one recovery, if any
	}
	wants := []want{
		{},                              // nothing written
		{permanent: "v1"},               // state
		{"v1", "undone"},                // begin v1 -> v2, killed mid-cut
		{"v1", "reverted to permanent"}, // committed, not confirmed
		{permanent: "v2"},               // confirmed
		{"v2", "undone"},                // begin v2 -> v3
		{"v2", "reverted to permanent"}, // committed v3, not confirmed
	}
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
			w := wants[n]
			require.Equal(t, w.permanent, rp.state["phone"].permanent, "%d records, %s", n, name)
			if w.outcome == "" {
				require.Empty(t, rp.recoveries, "%d records, %s", n, name)
			} else {
				require.Len(t, rp.recoveries, 1, "%d records, %s", n, name)
				require.Equal(t, w.outcome, rp.recoveries[0].Outcome)
			}
		}
	}
}

func TestJournalRejectsGarbage(t *testing.T) {
	tests := map[string]string{
		"not json":   "hello\n",
		"no machine": `{"op":"begin"}` + "\n",
		"unknown op": `{"op":"explode","machine":"m"}` + "\n",
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := decodeJournal([]byte(in))
			require.ErrorIs(t, err, ErrBadJournal)
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
	f.Fuzz(func(t *testing.T, b []byte) {
		rp, err := decodeJournal(b)
		if err != nil {
			require.ErrorIs(t, err, ErrBadJournal)
			return
		}
		for _, r := range rp.recoveries {
			require.NotEmpty(t, r.Machine)
		}
	})
}
