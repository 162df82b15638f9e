package upgrade_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/upgrade"
)

func TestUpgradeAllAtOnce(t *testing.T) {
	ctx := context.Background()
	_, h := newRelease(t)
	refs := startN(t, h, 50)
	for _, r := range refs {
		require.NoError(t, fsm.Cast(r, Inc{}))
	}
	require.Equal(t, "v1", status(t, h).Current)

	rep, err := h.Upgrade(ctx, "counter", "v2", upgrade.By("alice"))
	require.NoError(t, err)
	require.Equal(t, "ok", rep.Result)
	require.Equal(t, 50, rep.Selected)
	require.Equal(t, 50, rep.Changed)
	require.Equal(t, []string{"v1"}, rep.From)
	require.Equal(t, "alice", rep.Who)

	for _, inf := range infos(t, refs) {
		require.Equal(t, "v2", inf.Version)
		var d CountV2
		require.NoError(t, msgpack.Unmarshal(inf.Data, &d))
		require.Equal(t, CountV2{N: 1, Label: "from v1"}, d)
	}
	st := status(t, h)
	require.Equal(t, "v2", st.Current)
	require.Equal(t, "v1", st.Permanent)
	require.Equal(t, map[string]int{"v2": 50}, counts(st))
	require.Equal(t, []string{"v1", "v2"}, loaded(st), "v1 stays loaded until confirmed")
	require.Equal(t, "ok", st.Last.Result)

	// A machine started now starts on v2.
	ref, err := h.Start(ctx, "counter")
	require.NoError(t, err)
	require.Equal(t, "v2", infos(t, []actor.Ref{ref})[0].Version)

	require.NoError(t, h.Confirm(ctx, "counter"))
	st = status(t, h)
	require.Equal(t, "v2", st.Permanent)
	require.Equal(t, []string{"v2"}, loaded(st), "v1 unloaded: no machine runs it")
}

func TestUpgradeFailureRollsBackEveryMachine(t *testing.T) {
	ctx := context.Background()
	_, h := newRelease(t)
	n := 10_000
	if testing.Short() {
		n = 1000
	}
	refs := startN(t, h, n-1)
	for _, r := range refs {
		require.NoError(t, fsm.Cast(r, Inc{}))
	}
	// One machine whose data v2's UPGRADE refuses (a negative count).
	bad, err := counterV1().Snapshot("on", CountV1{N: -5})
	require.NoError(t, err)
	badRef, err := h.Restore(ctx, bad, fsm.WithID("bad"))
	require.NoError(t, err)
	refs = append(refs, badRef)
	before := infos(t, refs)

	rep, err := h.Upgrade(ctx, "counter", "v2")
	require.ErrorIs(t, err, upgrade.ErrRolledBack)
	require.ErrorIs(t, err, errBad)
	var me *upgrade.MachineError
	require.ErrorAs(t, err, &me)
	require.Equal(t, "bad", me.ID)
	require.Equal(t, "rolled back", rep.Result)
	require.Equal(t, 0, rep.Changed)

	require.Equal(t, before, infos(t, refs), "every machine back on v1 with its data as it was")
	st := status(t, h)
	require.Equal(t, "v1", st.Current)
	require.Equal(t, []string{"v1"}, loaded(st), "v2 unloaded")
	require.Equal(t, map[string]int{"v1": n}, counts(st))

	// The machines serve on.
	got, err := fsm.Call(ctx, refs[0], Get{})
	require.NoError(t, err)
	require.Equal(t, 1, got)
}

func TestRollbackAfterSuccess(t *testing.T) {
	ctx := context.Background()
	_, h := newRelease(t)
	refs := startN(t, h, 20)
	_, err := h.Upgrade(ctx, "counter", "v2")
	require.NoError(t, err)
	for _, r := range refs {
		require.NoError(t, fsm.Cast(r, Inc{})) // handled by v2: no exact revert now
	}
	rep, err := h.Rollback(ctx, "counter")
	require.NoError(t, err)
	require.Equal(t, "v1", rep.To)
	require.Equal(t, 20, rep.Changed)
	for _, inf := range infos(t, refs) {
		require.Equal(t, "v1", inf.Version)
		var d CountV1
		require.NoError(t, msgpack.Unmarshal(inf.Data, &d))
		require.Equal(t, 1, d.N, "the downgrade kept the event handled on v2")
	}
	st := status(t, h)
	require.Equal(t, "v1", st.Current)
	require.Equal(t, []string{"v1"}, loaded(st))

	_, err = h.Rollback(ctx, "counter")
	require.ErrorIs(t, err, upgrade.ErrNothingToRollBack)
}

func TestChain(t *testing.T) {
	ctx := context.Background()
	_, h := newRelease(t)
	refs := startN(t, h, 10)
	for _, r := range refs {
		require.NoError(t, fsm.Cast(r, Inc{}))
		require.NoError(t, fsm.Cast(r, Inc{}))
		require.NoError(t, fsm.Sync(ctx, r)) // v3 has no Inc: handle them on v1
	}
	_, err := h.Upgrade(ctx, "counter", "v3")
	require.NoError(t, err)
	for _, r := range refs {
		n, err := fsm.Call(ctx, r, Get{})
		require.NoError(t, err)
		require.Equal(t, "2", n)
	}
	// A snapshot handed over by a binary restart, of v1, restores on v3.
	s, err := counterV1().Snapshot("on", CountV1{N: 7})
	require.NoError(t, err)
	ref, err := h.Restore(ctx, s)
	require.NoError(t, err)
	n, err := fsm.Call(ctx, ref, Get{})
	require.NoError(t, err)
	require.Equal(t, "7", n)

	// And back down in one step of two downgrades.
	_, err = h.Rollback(ctx, "counter")
	require.NoError(t, err)
	n, err = fsm.Call(ctx, ref, Get{})
	require.NoError(t, err)
	require.Equal(t, 7, n)
}

func TestPreflightRefusals(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		extra func() fsm.Code
		to    string
		want  error
	}{
		{name: "unknown version", to: "v9", want: upgrade.ErrUnknownVersion},
		{name: "no upgrade path", to: "v4", want: upgrade.ErrNoPath, extra: func() fsm.Code {
			m := fsm.Define("counter", "v4", "on", CountV3{})
			m.UpgradesFromVersions("v0")
			return m
		}},
		{name: "no downgrade back", to: "v4", want: upgrade.ErrNoPath, extra: func() fsm.Code {
			m := fsm.Define("counter", "v4", "on", CountV1{})
			m.UpgradesFromVersions("v1")
			m.DowngradesToVersions()
			return m
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, h := newRelease(t)
			if tt.extra != nil {
				require.NoError(t, h.Register(tt.extra()))
			}
			refs := startN(t, h, 5)
			before := infos(t, refs)
			rep, err := h.Upgrade(ctx, "counter", tt.to)
			require.ErrorIs(t, err, tt.want)
			require.Equal(t, "refused", rep.Result)
			require.Equal(t, before, infos(t, refs))
			require.Equal(t, "v1", status(t, h).Current)
		})
	}
}

func TestDryRun(t *testing.T) {
	ctx := context.Background()
	_, h := newRelease(t)
	refs := startN(t, h, 10)
	bad, err := counterV1().Snapshot("on", CountV1{N: -1})
	require.NoError(t, err)
	_, err = h.Restore(ctx, bad, fsm.WithID("bad"))
	require.NoError(t, err)
	before := infos(t, refs)

	rep, err := h.DryRun(ctx, "counter", "v2")
	require.NoError(t, err)
	require.Equal(t, 11, rep.Selected)
	require.Equal(t, 10, rep.Passed)
	require.Len(t, rep.Failures, 1)
	require.Equal(t, "bad", rep.Failures[0].ID)
	require.Contains(t, rep.Failures[0].Error, errBad.Error())
	require.Equal(t, before, infos(t, refs), "nothing changed")

	rep, err = h.DryRun(ctx, "counter", "v3", upgrade.WithSelector(upgrade.Selector{IDs: []string{"m1", "m2"}}))
	require.NoError(t, err)
	require.Equal(t, 2, rep.Passed)
}

func TestPolicies(t *testing.T) {
	ctx := context.Background()
	t.Run("pin", func(t *testing.T) {
		_, h := newRelease(t, upgrade.WithPolicy("counter", upgrade.PolicyPin))
		refs := startN(t, h, 3)
		rep, err := h.Upgrade(ctx, "counter", "v2")
		require.NoError(t, err)
		require.Equal(t, 0, rep.Changed)
		for _, inf := range infos(t, refs) {
			require.Equal(t, "v1", inf.Version)
		}
		ref, err := h.Start(ctx, "counter")
		require.NoError(t, err)
		require.Equal(t, "v2", infos(t, []actor.Ref{ref})[0].Version)
		require.Equal(t, map[string]int{"v1": 3, "v2": 1}, counts(status(t, h)))
		require.NoError(t, h.Confirm(ctx, "counter"))
		require.Equal(t, []string{"v1", "v2"}, loaded(status(t, h)), "v1 stays loaded while pinned machines run it")
		for _, r := range refs {
			require.NoError(t, actor.Stop(ctx, r, nil))
		}
		require.Eventually(t, func() bool { return len(loaded(status(t, h))) == 1 }, relWait, relTick, "v1 unloaded after its last machine")
	})
	t.Run("restart", func(t *testing.T) {
		_, h := newRelease(t)
		h.SetPolicy("counter", upgrade.PolicyRestart)
		refs := startN(t, h, 3)
		_, err := h.Upgrade(ctx, "counter", "v2")
		require.NoError(t, err)
		for _, r := range refs {
			reason, err := actor.Wait(ctx, r)
			require.NoError(t, err)
			require.ErrorIs(t, reason, upgrade.ErrRestarted)
		}
		ref, err := h.Start(ctx, "counter")
		require.NoError(t, err)
		require.Equal(t, "v2", infos(t, []actor.Ref{ref})[0].Version)
	})
	t.Run("migrate is the default", func(t *testing.T) {
		_, h := newRelease(t)
		require.Equal(t, "migrate", status(t, h).Policy)
	})
}

func TestConcurrentUpgradeRefused(t *testing.T) {
	ctx := context.Background()
	sys := actor.NewSystem(actor.WithLogger(quiet()))
	h, err := upgrade.NewReleaseHandler(sys, upgrade.WithReleaseLogger(quiet()))
	require.NoError(t, err)
	defer func() {
		require.NoError(t, h.Close(ctx))
		require.NoError(t, sys.Shutdown(ctx))
	}()
	block, entered := make(chan struct{}), make(chan struct{}, 1)
	require.NoError(t, h.Register(counterV1()))
	require.NoError(t, h.Register(counterV2(entered, block)))
	var once sync.Once
	unblock := func() { once.Do(func() { close(block) }) }
	defer unblock() // also when a check fails
	startN(t, h, 3)

	done := make(chan error, 1)
	go func() {
		_, err := h.Upgrade(ctx, "counter", "v2")
		done <- err
	}()
	<-entered // the first upgrade is in a machine's UPGRADE
	_, err = h.Upgrade(ctx, "counter", "v2")
	require.ErrorIs(t, err, upgrade.ErrBusy)
	_, err = h.Rollback(ctx, "counter")
	require.ErrorIs(t, err, upgrade.ErrBusy)
	require.ErrorIs(t, h.Confirm(ctx, "counter"), upgrade.ErrBusy)
	unblock()
	require.NoError(t, <-done)
	require.Equal(t, map[string]int{"v2": 3}, counts(status(t, h)))
}

func TestUpgradeRacesWithSpawnsAndExits(t *testing.T) {
	ctx := context.Background()
	sys, h := newRelease(t)
	refs := startN(t, h, 200)
	stop := make(chan struct{})
	errc := make(chan error, 2)
	go func() { // spawns
		for i := 0; ; i++ {
			select {
			case <-stop:
				errc <- nil
				return
			default:
			}
			if _, err := h.Start(ctx, "counter", fsm.WithID(fmt.Sprint("new", i))); err != nil {
				errc <- err
				return
			}
		}
	}()
	go func() { // exits
		for _, r := range refs[:100] {
			if err := actor.Stop(ctx, r, nil); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for range 5 {
		_, err := h.Upgrade(ctx, "counter", "v2")
		require.NoError(t, err)
		_, err = h.Rollback(ctx, "counter")
		require.NoError(t, err)
	}
	_, err := h.Upgrade(ctx, "counter", "v2")
	require.NoError(t, err)
	close(stop)
	require.NoError(t, <-errc)
	require.NoError(t, <-errc)

	// Every live machine runs v2, and the counts say so.
	require.Eventually(t, func() bool {
		c := counts(status(t, h))
		return len(c) == 1 && c["v2"] == sys.Count()-1 // the watcher is an actor too
	}, relWait, relTick, "counts %v, %d actors", counts(status(t, h)), sys.Count())
	for _, r := range refs[100:] {
		require.Equal(t, "v2", infos(t, []actor.Ref{r})[0].Version)
	}
}

// TestNoEventLost sends events to every machine while it is upgraded,
// rolled back and upgraded again: each is handled once, in order.
func TestNoEventLost(t *testing.T) {
	ctx := context.Background()
	_, h := newRelease(t)
	refs := startN(t, h, 100)
	const events = 30
	sent := make(chan error, 1)
	go func() {
		for range events {
			for _, r := range refs {
				if err := fsm.Cast(r, Inc{}); err != nil {
					sent <- err
					return
				}
			}
		}
		sent <- nil
	}()
	_, err := h.Upgrade(ctx, "counter", "v2")
	require.NoError(t, err)
	_, err = h.Rollback(ctx, "counter")
	require.NoError(t, err)
	_, err = h.Upgrade(ctx, "counter", "v2")
	require.NoError(t, err)
	require.NoError(t, <-sent)
	for _, r := range refs {
		n, err := fsm.Call(ctx, r, Get{})
		require.NoError(t, err)
		require.Equal(t, events, n)
	}
}

// TestUnknownNames: every call that names a machine or a version the
// handler does not know refuses it, naming it, and changes nothing.
func TestUnknownNames(t *testing.T) {
	ctx := context.Background()
	_, h := newRelease(t)
	refs := startN(t, h, 3)
	before := infos(t, refs)

	_, err := h.Upgrade(ctx, "modem", "v2")
	require.ErrorIs(t, err, upgrade.ErrUnknownMachine)
	require.ErrorContains(t, err, `"modem"`)
	_, err = h.Rollback(ctx, "modem")
	require.ErrorIs(t, err, upgrade.ErrUnknownMachine)
	require.ErrorIs(t, h.Confirm(ctx, "modem"), upgrade.ErrUnknownMachine)
	_, err = h.DryRun(ctx, "modem", "v2")
	require.ErrorIs(t, err, upgrade.ErrUnknownMachine)
	_, err = h.Start(ctx, "modem")
	require.ErrorIs(t, err, upgrade.ErrUnknownMachine)

	_, err = h.DryRun(ctx, "counter", "v9")
	require.ErrorIs(t, err, upgrade.ErrUnknownVersion)
	require.ErrorContains(t, err, "v9")
	s, err := counterV1().Snapshot("on", CountV1{N: 1})
	require.NoError(t, err)
	s.Version = "v0"
	_, err = h.Restore(ctx, s)
	require.ErrorIs(t, err, upgrade.ErrUnknownVersion)
	require.ErrorContains(t, err, "v0")

	require.Equal(t, before, infos(t, refs))
	require.Equal(t, map[string]int{"v1": 3}, counts(status(t, h)))
}
