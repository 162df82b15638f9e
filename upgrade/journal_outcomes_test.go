package upgrade_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/upgrade"
)

// journalRecords returns the records of the journal in dir.
func journalRecords(t *testing.T, dir string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "release.journal"))
	require.NoError(t, err)
	var out []map[string]any
	for line := range bytes.Lines(b) {
		var rec map[string]any
		require.NoError(t, json.Unmarshal(line, &rec))
		out = append(out, rec)
	}
	return out
}

// TestJournalEndOfNewSessions: the rollback that ends a new-sessions
// rollout is journaled as what it is, the end of the rollout to v2 with
// new machines back on v1, and a host that dies in the middle of it comes
// back on v1 and reports it so. Before, its begin and commit said "from
// v1 to v1", and the restart reported a rollback from v1 to v1.
func TestJournalEndOfNewSessions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	_, h := newRelease(t, upgrade.WithJournal(dir))
	startN(t, h, 4)
	_, err := h.Upgrade(ctx, "counter", "v2", upgrade.WithStrategy(upgrade.NewSessions(50)))
	require.NoError(t, err)
	for i := range 20 {
		_, err := h.Start(ctx, "counter", fsm.WithID(fmt.Sprintf("s%d", i)))
		require.NoError(t, err)
	}
	require.Positive(t, counts(status(t, h))["v2"], "some sessions started on v2")
	rep, err := h.Rollback(ctx, "counter")
	require.NoError(t, err)
	require.Equal(t, "ok", rep.Result)
	require.Equal(t, "v1", status(t, h).Current)
	require.NoError(t, h.Close(ctx))

	recs := journalRecords(t, dir)
	require.GreaterOrEqual(t, len(recs), 2)
	begin, commit := recs[len(recs)-2], recs[len(recs)-1]
	require.Equal(t, map[string]any{"op": "begin", "machine": "counter", "kind": "end-sessions", "from": "v2", "to": "v1"}, begin)
	require.Equal(t, map[string]any{"op": "commit", "machine": "counter", "from": "v2", "to": "v1", "current": "v1", "permanent": "v1"}, commit)

	// The host died before the commit.
	path := filepath.Join(dir, "release.journal")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	i := bytes.LastIndex(b, []byte(`{"op":"commit"`))
	require.Positive(t, i)
	require.NoError(t, os.WriteFile(path, b[:i], 0o600))
	_, h = newRelease(t, upgrade.WithJournal(dir))
	require.Equal(t, []upgrade.Recovery{{Machine: "counter", Kind: "end-sessions", From: "v2", To: "v1", Outcome: upgrade.OutcomeResumed, Current: "v1"}}, h.Recovered())
	st := status(t, h)
	require.Equal(t, "v1", st.Current)
	require.Nil(t, st.Sessions, "the share does not survive a restart")
}

// lockedBuffer is a bytes.Buffer safe for the logger's concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestJournalUnknownVersion: a journal that names a version the host does
// not register (an older binary, a plugin missing from the directory)
// brings the machine back on its first registered version, and says so:
// Recovered reports it, and the first start on it logs a warning. The
// journal keeps the version it named, so that registering it (now, or at
// a later start) brings it back; a Confirm replaces it. Before, the first
// registered version was used and nothing said so.
func TestJournalUnknownVersion(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "release.journal"),
		[]byte(`{"op":"state","machine":"counter","to":"v3","permanent":"v3"}`+"\n"), 0o600))
	var logs lockedBuffer
	sys := actor.NewSystem(actor.WithLogger(quiet()))
	h, err := upgrade.NewReleaseHandler(sys, upgrade.WithJournal(dir), upgrade.WithReleaseLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, h.Close(context.Background()))
		require.NoError(t, sys.Shutdown(context.Background()))
	})
	require.NoError(t, h.Register(counterV1()))
	require.NoError(t, h.Register(counterV2(nil, nil)))

	require.Equal(t, []upgrade.Recovery{{Machine: "counter", Kind: "journal", To: "v3", Outcome: upgrade.OutcomeUnknownVersion, Current: "v1",
		Detail: "the journal names version v3, which is not registered: machines start on v1, the first registered, until v3 is registered or another version is confirmed"}},
		h.Recovered())
	st := status(t, h)
	require.Equal(t, "v1", st.Current)
	require.Equal(t, "v3", st.Permanent, "the journal's version is kept")
	refs := startN(t, h, 2)
	require.Equal(t, "v1", infos(t, refs)[0].Version)
	require.Equal(t, 1, strings.Count(logs.String(), "the journal names a version that is not registered"), "one warning: %s", logs.String())

	// Registered late: used from then on, and no longer reported.
	require.NoError(t, h.Register(counterV3()))
	require.Empty(t, h.Recovered())
	require.Equal(t, "v3", status(t, h).Current)
	for _, r := range refs {
		require.NoError(t, actor.Stop(ctx, r, actor.Normal))
	}
	require.NoError(t, h.Close(ctx))

	// A host without v3 again, which confirms the version it runs.
	_, h2 := newRelease(t, upgrade.WithJournal(dir))
	require.NoError(t, h2.Close(ctx))
	sys3 := actor.NewSystem(actor.WithLogger(quiet()))
	h3, err := upgrade.NewReleaseHandler(sys3, upgrade.WithJournal(dir), upgrade.WithReleaseLogger(quiet()))
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, h3.Close(context.Background()))
		require.NoError(t, sys3.Shutdown(context.Background()))
	})
	require.NoError(t, h3.Register(counterV1()))
	require.Len(t, h3.Recovered(), 1)
	require.NoError(t, h3.Confirm(ctx, "counter"))
	require.Empty(t, h3.Recovered(), "v1 confirmed: the journal names it")
	require.Equal(t, "v1", status(t, h3).Permanent)
}

// TestJournalCommitNotWritten: a move whose commit cannot be journaled
// has taken effect (the machines run v2, v2 is current, the Report says
// ok), and its error says so: it wraps ErrNotJournaled as well as
// ErrBadJournal. A Confirm that cannot be journaled changes nothing. Once
// the journal can be written again, a Confirm records v2, and a restart
// comes back on it. Before, the caller got ErrBadJournal alone, as for a
// move refused before it began.
func TestJournalCommitNotWritten(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "release.journal")
	sys := actor.NewSystem(actor.WithLogger(quiet()))
	h, err := upgrade.NewReleaseHandler(sys, upgrade.WithJournal(dir), upgrade.WithReleaseLogger(quiet()))
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, h.Close(context.Background()))
		require.NoError(t, sys.Shutdown(context.Background()))
	})
	entered, block := make(chan struct{}, 1), make(chan struct{})
	require.NoError(t, h.Register(counterV1()))
	require.NoError(t, h.Register(counterV2(entered, block)))
	refs := startN(t, h, 1)

	type result struct {
		rep upgrade.Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := h.Upgrade(ctx, "counter", "v2")
		done <- result{rep, err}
	}()
	<-entered // begin is written; the machine's UPGRADE runs
	// The journal cannot be written any more: a directory took its name.
	require.NoError(t, os.Remove(path))
	require.NoError(t, os.Mkdir(path, 0o700))
	close(block)
	res := <-done
	require.ErrorIs(t, res.err, upgrade.ErrNotJournaled)
	require.ErrorIs(t, res.err, upgrade.ErrBadJournal)
	require.Equal(t, "ok", res.rep.Result)
	require.Equal(t, 1, res.rep.Changed)
	require.Equal(t, "v2", infos(t, refs)[0].Version)
	st := status(t, h)
	require.Equal(t, "v2", st.Current)
	require.Equal(t, "v1", st.Permanent)

	err = h.Confirm(ctx, "counter")
	require.ErrorIs(t, err, upgrade.ErrBadJournal)
	require.NotErrorIs(t, err, upgrade.ErrNotJournaled)
	require.Equal(t, "v1", status(t, h).Permanent, "a confirm not journaled is not done")

	require.NoError(t, os.Remove(path))
	require.NoError(t, h.Confirm(ctx, "counter"))
	require.Equal(t, "v2", status(t, h).Permanent)
	require.NoError(t, actor.Stop(ctx, refs[0], actor.Normal))
	require.NoError(t, h.Close(ctx))

	_, h = newRelease(t, upgrade.WithJournal(dir))
	require.Empty(t, h.Recovered())
	require.Equal(t, "v2", status(t, h).Current)
}

// TestJournalUnknownVersionStaysLoaded: the first registered version,
// which runs in place of the journal's unregistered one, is the current
// version and stays loaded when its last machine exits, as a current
// version does. Before, the handler compared against the journal's name,
// and unloaded it (a plugin's process stopped, to be started again by
// the next machine).
func TestJournalUnknownVersionStaysLoaded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "release.journal"),
			[]byte(`{"op":"state","machine":"counter","to":"v3","permanent":"v3"}`+"\n"), 0o600))
		sys := actor.NewSystem(actor.WithLogger(quiet()))
		h, err := upgrade.NewReleaseHandler(sys, upgrade.WithJournal(dir), upgrade.WithReleaseLogger(quiet()))
		require.NoError(t, err)
		require.NoError(t, h.Register(counterV1()))
		require.NoError(t, h.Register(counterV2(nil, nil)))
		refs := startN(t, h, 1)
		require.Equal(t, []string{"v1"}, loaded(status(t, h)))
		require.NoError(t, actor.Stop(ctx, refs[0], actor.Normal))
		synctest.Wait() // the handler has seen it exit
		st := status(t, h)
		require.Empty(t, counts(st))
		require.Equal(t, []string{"v1"}, loaded(st), "the version that runs in place of v3 stays loaded")
		require.NoError(t, h.Close(ctx))
		require.NoError(t, sys.Shutdown(ctx))
	})
}

// TestJournalCommitNotWrittenRestartPolicy: under PolicyRestart, a move
// whose commit cannot be journaled has taken effect as under
// PolicyMigrate: v2 is current, the Report says ok, and the machines that
// ran v1 are restarted (stopped with ErrRestarted, for their supervisor
// to start on v2). Before, the error skipped the restart: v2 was current
// and every machine went on running v1.
func TestJournalCommitNotWrittenRestartPolicy(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "release.journal")
	_, h := newRelease(t, upgrade.WithJournal(dir))
	h.SetPolicy("counter", upgrade.PolicyRestart)
	refs := startN(t, h, 2)
	upgrade.JournalBeforeAppend(h, func(op string) {
		if op == "commit" { // the journal cannot be written any more
			require.NoError(t, os.Remove(path))
			require.NoError(t, os.Mkdir(path, 0o700))
		}
	})
	rep, err := h.Upgrade(ctx, "counter", "v2")
	require.ErrorIs(t, err, upgrade.ErrNotJournaled)
	require.Equal(t, "ok", rep.Result)
	require.Equal(t, len(refs), rep.Changed)
	require.Equal(t, "v2", status(t, h).Current)
	for _, r := range refs {
		reason, err := actor.Wait(ctx, r)
		require.NoError(t, err)
		require.ErrorIs(t, reason, upgrade.ErrRestarted)
	}
	require.NoError(t, os.Remove(path)) // for the handler's Close
}
