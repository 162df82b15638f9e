package upgrade_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/upgrade"
)

// TestJournalRestart runs the journal through process lifetimes, each a
// new handler on the same directory: an unconfirmed upgrade comes back on
// the permanent version; a confirmed one stays; a host killed mid-upgrade
// (a begin with no end in the journal) has it undone, and says so.
func TestJournalRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()

	_, h := newRelease(t, upgrade.WithJournal(dir))
	startN(t, h, 5)
	_, err := h.Upgrade(ctx, "counter", "v2")
	require.NoError(t, err)
	require.NoError(t, h.Close(ctx))

	// Restart 1: v2 was never confirmed.
	_, h = newRelease(t, upgrade.WithJournal(dir))
	require.Equal(t, []upgrade.Recovery{{Machine: "counter", Kind: "upgrade", From: "v1", To: "v2", Outcome: "reverted to permanent", Current: "v1"}}, h.Recovered())
	require.Equal(t, "v1", status(t, h).Current)
	startN(t, h, 5)
	_, err = h.Upgrade(ctx, "counter", "v2")
	require.NoError(t, err)
	require.NoError(t, h.Confirm(ctx, "counter"))
	require.NoError(t, h.Close(ctx))

	// Restart 2: v2 was confirmed.
	_, h = newRelease(t, upgrade.WithJournal(dir))
	require.Empty(t, h.Recovered())
	st := status(t, h)
	require.Equal(t, "v2", st.Current)
	require.Equal(t, "v2", st.Permanent)
	require.NoError(t, h.Close(ctx))

	// Restart 3: the host died in the middle of an upgrade to v3.
	f, err := os.OpenFile(filepath.Join(dir, "release.journal"), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"op":"begin","machine":"counter","kind":"upgrade","from":"v2","to":"v3"}` + "\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	_, h = newRelease(t, upgrade.WithJournal(dir))
	require.Equal(t, []upgrade.Recovery{{Machine: "counter", Kind: "upgrade", From: "v2", To: "v3", Outcome: "undone", Current: "v2"}}, h.Recovered())
	require.Equal(t, "v2", status(t, h).Current)
}

// TestJournalPartialMove: an upgrade of some machines (a selector) does
// not change the current version, and the journal says so: the next
// start has nothing to recover and comes back on v1.
func TestJournalPartialMove(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	_, h := newRelease(t, upgrade.WithJournal(dir))
	startN(t, h, 4)
	rep, err := h.Upgrade(ctx, "counter", "v2", upgrade.WithSelector(upgrade.Selector{IDs: []string{"m1", "m2"}}))
	require.NoError(t, err)
	require.Equal(t, 2, rep.Changed)
	require.Equal(t, "v1", status(t, h).Current)
	require.NoError(t, h.Close(ctx))

	_, h = newRelease(t, upgrade.WithJournal(dir))
	require.Empty(t, h.Recovered())
	require.Equal(t, "v1", status(t, h).Current)
}

// TestJournalRestoreAfterUnconfirmed: a host restarted (a binary restart)
// before v2 was confirmed comes back on v1, and the machines handed over
// on v2 are restored on v1 through v2's downgrade.
func TestJournalRestoreAfterUnconfirmed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	_, h := newRelease(t, upgrade.WithJournal(dir))
	refs := startN(t, h, 2)
	require.NoError(t, fsm.Cast(refs[0], Inc{}))
	_, err := h.Upgrade(ctx, "counter", "v2")
	require.NoError(t, err)
	require.NoError(t, fsm.Cast(refs[0], Inc{}))
	require.NoError(t, fsm.Sync(ctx, refs[0]))
	inf, err := fsm.Inspect(ctx, refs[0])
	require.NoError(t, err)
	snap := inf.Snapshot() // what a handoff carries
	require.Equal(t, "v2", snap.Version)
	require.NoError(t, h.Close(ctx))

	_, h = newRelease(t, upgrade.WithJournal(dir))
	require.Equal(t, "v1", status(t, h).Current)
	ref, err := h.Restore(ctx, snap)
	require.NoError(t, err)
	got := infos(t, []actor.Ref{ref})[0]
	require.Equal(t, "v1", got.Version)
	n, err := fsm.Call(ctx, ref, Get{})
	require.NoError(t, err)
	require.Equal(t, 2, n, "both events, the one handled on v2 too")
}
