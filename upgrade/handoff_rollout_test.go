package upgrade

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
)

// handoffWaits makes rh tell on the returned channel each machine name
// whose upgrade a handoff waits for.
func handoffWaits(rh *ReleaseHandler) <-chan string {
	waits := make(chan string, 8)
	rh.mu.Lock()
	rh.handoffWaits = func(machine string) { waits <- machine }
	rh.mu.Unlock()
	return waits
}

// A SIGHUP during a rolling upgrade: the handoff waits for the rollout,
// stopped between its batches (one machine moved, one not), to end before
// it pauses and images the machines, so that both are handed over on the
// new version with the release state that goes with it. From then on the
// old process refuses upgrades, rollbacks and confirms with ErrHandingOff,
// before and after the new process is ready (the old one exits).
func TestHandoffWaitsForRollout(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "handoff")
	old, oldRH := releaseSide(t, dir, false)
	require.NoError(t, old.r.Ready())
	waits := handoffWaits(oldRH)
	for _, id := range []string{"a", "b"} {
		ref, err := oldRH.Start(ctx, "chain", fsm.WithID(id))
		require.NoError(t, err)
		require.NoError(t, old.h.Manage(id, ref))
	}

	between, proceed := make(chan struct{}), make(chan struct{})
	type result struct {
		rep Report
		err error
	}
	rolled := make(chan result, 1)
	go func() {
		rep, err := oldRH.Upgrade(ctx, "chain", "v2", WithStrategy(Rolling(1)), WithProgress(func(p Progress) {
			if p.Phase == "batch" && p.Batch == 1 {
				close(between)
				<-proceed
			}
		}))
		rolled <- result{rep, err}
	}()
	<-between
	_, err := oldRH.Upgrade(ctx, "chain", "v3")
	require.ErrorIs(t, err, ErrBusy, "the rollout holds the machine name")
	require.NotErrorIs(t, err, ErrHandingOff)

	reply, done := old.upgrade(t)
	nw, newRH := releaseSide(t, dir, true)
	nw.h.cfg.parentPID = func() int { return old.r.pid }
	type received struct {
		got *Restored
		err error
	}
	recv := make(chan received, 1)
	go func() {
		got, err := nw.h.Receive(ctx)
		recv <- received{got, err}
	}()
	require.Equal(t, "chain", <-waits, "the handoff waits for the rollout")
	close(proceed)
	res := <-rolled
	require.NoError(t, res.err)
	require.Equal(t, 2, res.rep.Changed)
	r := <-recv
	require.NoError(t, r.err)

	require.Equal(t, "v2", statusOf(t, newRH, "chain").Current)
	require.Len(t, r.got.Machines, 2)
	for _, key := range []string{"a", "b"} {
		inf, err := fsm.Inspect(ctx, r.got.Machines[key])
		require.NoError(t, err)
		require.Equal(t, "v2", inf.Version, key)
		var log []string
		require.NoError(t, msgpack.Unmarshal(inf.Data, &log))
		require.Equal(t, []string{"v1->v2"}, log, "%s: imaged after the rollout, moved once", key)
	}

	refused := func() {
		t.Helper()
		_, err := oldRH.Upgrade(ctx, "chain", "v3")
		require.ErrorIs(t, err, ErrHandingOff)
		require.ErrorContains(t, err, "chain")
		_, err = oldRH.Rollback(ctx, "chain")
		require.ErrorIs(t, err, ErrHandingOff)
		require.ErrorIs(t, oldRH.Confirm(ctx, "chain"), ErrHandingOff)
	}
	refused()
	reply <- nil // the new process is ready: the old one exits
	require.NoError(t, <-done)
	refused()
	require.Equal(t, "v2", statusOf(t, oldRH, "chain").Current, "the old handler did not move")
}

// A handoff that cannot get the machine names' upgrades within its
// timeout (a canary window that does not end) fails before it pauses
// anything: the new process is told no state, the machines never stopped
// serving here, and once the rollout ends upgrades run again.
func TestHandoffRolloutOutlastsTimeout(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "handoff")
	old, oldRH := releaseSide(t, dir, false, WithHandoffTimeout(time.Second))
	require.NoError(t, old.r.Ready())
	waits := handoffWaits(oldRH)
	var refs []actor.Ref
	for _, id := range []string{"a", "b"} {
		ref, err := oldRH.Start(ctx, "chain", fsm.WithID(id))
		require.NoError(t, err)
		require.NoError(t, old.h.Manage(id, ref))
		refs = append(refs, ref)
	}

	inWindow, proceed := make(chan struct{}), make(chan struct{})
	rolled := make(chan error, 1)
	go func() {
		_, err := oldRH.Upgrade(ctx, "chain", "v2", WithStrategy(Canary(CanaryWindow(time.Millisecond),
			CanaryHealth(func(context.Context, []actor.Ref) error {
				close(inWindow)
				<-proceed
				return nil
			}))))
		rolled <- err
	}()
	<-inWindow

	reply, done := old.upgrade(t)
	nw, _ := releaseSide(t, dir, true)
	nw.h.cfg.parentPID = func() int { return old.r.pid }
	_, err := nw.h.Receive(ctx)
	require.ErrorIs(t, err, ErrHandoff)
	require.Equal(t, "chain", <-waits)
	reply <- errors.New("the new process exited")
	require.Error(t, <-done)
	require.Contains(t, old.log.String(), "an upgrade of chain did not end in time")

	// Nothing was paused: the machines answer while the canary window
	// still runs, and the exclusion is the rollout's again.
	for _, ref := range refs {
		_, err := fsm.Inspect(ctx, ref)
		require.NoError(t, err)
	}
	_, err = oldRH.Upgrade(ctx, "chain", "v3")
	require.ErrorIs(t, err, ErrBusy)
	require.NotErrorIs(t, err, ErrHandingOff)

	close(proceed)
	require.NoError(t, <-rolled)
	require.NoError(t, oldRH.Confirm(ctx, "chain"))
	require.Equal(t, "v2", statusOf(t, oldRH, "chain").Permanent)
}
