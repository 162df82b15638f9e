package upgrade

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
)

// stepCode is chainCode with a downgrade, so that the release handler
// can move between its versions both ways.
func stepCode(version string) *fsm.Machine[[]string] {
	m := chainCode(version)
	m.OnDowngrade(func(to, state string, log []string) (string, any, error) {
		return state, append(log, version+"->"+to), nil
	})
	return m
}

// releaseSide is a side whose Handoff carries rh, which knows stepCode's
// v1, v2 and v3 (no code is given to the Handoff itself).
func releaseSide(t *testing.T, dir string, parent bool, opts ...HandoffOption) (*side, *ReleaseHandler) {
	t.Helper()
	sys := testSystem(t)
	rh, err := NewReleaseHandler(sys)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, rh.Close(context.Background())) })
	for _, v := range []string{"v1", "v2", "v3"} {
		require.NoError(t, rh.Register(stepCode(v)))
	}
	s := &side{f: newFakeFlip(), sys: sys}
	s.f.hasParent = parent
	s.r, s.log = testRestarter(t, s.f)
	s.h, err = NewHandoff(s.r, sys, append([]HandoffOption{WithHandoffDir(dir), WithReleaseHandler(rh)}, opts...)...)
	require.NoError(t, err)
	s.h.cfg.parentPID = func() int { return 0 }
	s.h.cfg.successor = selfIsSuccessor
	return s, rh
}

func statusOf(t *testing.T, rh *ReleaseHandler, machine string) MachineStatus {
	t.Helper()
	for _, ms := range rh.Status() {
		if ms.Machine == machine {
			return ms
		}
	}
	t.Fatalf("no status of %s", machine)
	return MachineStatus{}
}

// The release handler's current and permanent versions and its rollback
// history cross a binary restart: rollbacks in the new process go where
// they would have gone in the old one. The machines are restored under
// the handler's code, a machine left on an older version (a canary's
// rest) through the UPGRADE of each version between.
func TestHandoffCarriesReleaseHistory(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "handoff")
	old, oldRH := releaseSide(t, dir, false)
	require.NoError(t, old.r.Ready())
	a, err := oldRH.Start(ctx, "chain", fsm.WithID("a")) // on v1
	require.NoError(t, err)
	_, err = oldRH.Upgrade(ctx, "chain", "v2")
	require.NoError(t, err)
	require.NoError(t, oldRH.Confirm(ctx, "chain"))
	_, err = oldRH.Upgrade(ctx, "chain", "v3")
	require.NoError(t, err)
	b, err := oldRH.Start(ctx, "chain", fsm.WithID("b")) // on v3
	require.NoError(t, err)
	// b alone back to v2 (a canary's rest, say): the current version stays v3.
	_, err = oldRH.Upgrade(ctx, "chain", "v2", WithSelector(Selector{IDs: []string{"b"}}))
	require.NoError(t, err)
	for key, ref := range map[string]actor.Ref{"a": a, "b": b} {
		require.NoError(t, old.h.Manage(key, ref))
	}
	before := statusOf(t, oldRH, "chain")
	require.Equal(t, "v3", before.Current)
	require.Equal(t, "v2", before.Permanent)

	reply, done := old.upgrade(t)
	nw, newRH := releaseSide(t, dir, true)
	nw.h.cfg.parentPID = func() int { return old.r.pid }
	got, err := nw.h.Receive(ctx)
	require.NoError(t, err)
	reply <- nil
	require.NoError(t, <-done)

	after := statusOf(t, newRH, "chain")
	require.Equal(t, before.Current, after.Current)
	require.Equal(t, before.Permanent, after.Permanent)
	require.Len(t, got.Machines, 2)
	for key, want := range map[string][]string{
		"a": {"v1->v2", "v2->v3"}, // on v3 as it was
		"b": {"v3->v2", "v2->v3"}, // on v2, restored on v3 through rh's UPGRADE
	} {
		inf, err := fsm.Inspect(ctx, got.Machines[key])
		require.NoError(t, err)
		require.Equal(t, "v3", inf.Version, key)
		var log []string
		require.NoError(t, msgpack.Unmarshal(inf.Data, &log))
		require.Equal(t, want, log, key)
	}

	// The new handler rolls back as the old one would have: to v2, then
	// to v1 (whose rollback from the confirmed v2 makes v1 permanent),
	// then there is nothing left.
	rep, err := newRH.Rollback(ctx, "chain")
	require.NoError(t, err)
	require.Equal(t, "v2", rep.To)
	rep, err = newRH.Rollback(ctx, "chain")
	require.NoError(t, err)
	require.Equal(t, "v1", rep.To)
	require.Equal(t, "v1", statusOf(t, newRH, "chain").Permanent)
	_, err = newRH.Rollback(ctx, "chain")
	require.ErrorIs(t, err, ErrNothingToRollBack)
}
