package fsm_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/actor/actortest"
	"github.com/hotline-go/hotline/fsm"
)

// The tests of this file give up on a change of code (its ctx is
// cancelled) while it waits for a machine that a system operation holds,
// and check that the machine is left as the caller found it.

// holdSys holds ref in a system operation (an Inspect, on a goroutine of
// its own) until letGo is closed, and returns once it holds it: a request
// made meanwhile waits behind it.
func holdSys(t *testing.T, ref actor.Ref, wg *sync.WaitGroup) (letGo chan struct{}) {
	t.Helper()
	holding, letGo := make(chan struct{}), make(chan struct{})
	wg.Go(func() {
		_ = actor.Inspect(context.Background(), ref, func(actor.Behavior) error {
			close(holding)
			<-letGo
			return nil
		})
	})
	<-holding
	return letGo
}

// isSuspended reports whether ref is suspended.
func isSuspended(t *testing.T, ref actor.Ref) bool {
	t.Helper()
	_, err := actor.QueuedMessages(context.Background(), ref)
	if err == nil {
		return true
	}
	require.ErrorIs(t, err, actor.ErrNotSuspended)
	return false
}

// giveUp runs op with a ctx that is cancelled once op waits, then lets
// the hold go, and returns op's error.
func giveUp(letGo chan struct{}, op func(ctx context.Context) error) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- op(ctx) }()
	synctest.Wait() // op waits behind the hold
	cancel()
	synctest.Wait()
	close(letGo)
	return <-errc
}

// A ChangeCode given up while its suspension waits leaves the machine as
// it was: not changed, and not resumed either if another caller had
// suspended it (a release handler in the middle of its cut, say). It used
// to resume the machine whatever happened, when a suspension given up
// might still be carried out later.
func TestChangeCodeGivenUpWhileSuspending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bg := context.Background()
		sys := actortest.NewSystem(t)
		ref := start(t, sys, recorderV1())
		require.NoError(t, actor.Suspend(bg, ref)) // another caller's
		var wg sync.WaitGroup
		letGo := holdSys(t, ref, &wg)
		err := giveUp(letGo, func(ctx context.Context) error { return fsm.ChangeCode(ctx, ref, recorderV2()) })
		wg.Wait()
		require.ErrorIs(t, err, context.Canceled)
		require.True(t, isSuspended(t, ref), "the other caller's suspension stands")
		inf, err := fsm.Inspect(bg, ref)
		require.NoError(t, err)
		require.Equal(t, "v1", inf.Version)
		require.NoError(t, actor.Resume(bg, ref))
	})
}

// ChangeSuspended and Revert given up while they wait are not carried
// out: the machine keeps its version, and what can be reverted.
func TestChangeSuspendedAndRevertGivenUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bg := context.Background()
		sys := actortest.NewSystem(t)
		ref := start(t, sys, recorderV1())
		require.NoError(t, fsm.Cast(ref, Rec{1}))
		require.NoError(t, actor.Suspend(bg, ref))
		var wg sync.WaitGroup

		err := giveUp(holdSys(t, ref, &wg), func(ctx context.Context) error {
			return fsm.ChangeSuspended(ctx, ref, recorderV2())
		})
		wg.Wait()
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorIs(t, fsm.Revert(bg, ref), fsm.ErrNoRevert, "not changed: nothing to revert")
		inf, err := fsm.Inspect(bg, ref)
		require.NoError(t, err)
		require.Equal(t, "v1", inf.Version)

		require.NoError(t, fsm.ChangeSuspended(bg, ref, recorderV2()))
		err = giveUp(holdSys(t, ref, &wg), func(ctx context.Context) error { return fsm.Revert(ctx, ref) })
		wg.Wait()
		require.ErrorIs(t, err, context.Canceled)
		inf, err = fsm.Inspect(bg, ref)
		require.NoError(t, err)
		require.Equal(t, "v2", inf.Version, "the revert given up did not run")
		require.NoError(t, fsm.Revert(bg, ref), "and the change can still be reverted")
		require.NoError(t, actor.Resume(bg, ref))
		require.NoError(t, fsm.Cast(ref, Rec{2}))
		require.Equal(t, []int{1, 2}, recordedV1(t, ref))
	})
}

// A Stager's Stage or Commit given up while it waits is not carried out,
// and Release closes the instance Prepare made.
func TestStagerGivenUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bg := context.Background()
		l := &closeLog{}
		sys := actortest.NewSystem(t)
		v1, v2 := closingCode{recorderV1(), l}, closingCode{recorderV2(), l}
		ref, err := fsm.Start(bg, sys, v1)
		require.NoError(t, err)
		require.NoError(t, fsm.Cast(ref, Rec{1}))
		st := fsm.NewStager()
		var wg sync.WaitGroup

		// Stage given up: nothing staged; Commit would make the whole change.
		require.NoError(t, actor.Suspend(bg, ref))
		err = giveUp(holdSys(t, ref, &wg), func(ctx context.Context) error { return st.Stage(ctx, ref) })
		wg.Wait()
		require.ErrorIs(t, err, context.Canceled)
		require.NoError(t, actor.Resume(bg, ref))
		st.Release()

		// Commit given up: the machine stays on v1, and the prepared v2 is
		// closed by Release.
		require.NoError(t, suspended(t, ref, func() error { return st.Stage(bg, ref) }))
		require.NoError(t, st.Prepare(bg, v2))
		require.NoError(t, actor.Suspend(bg, ref))
		err = giveUp(holdSys(t, ref, &wg), func(ctx context.Context) error { return st.Commit(ctx, ref) })
		wg.Wait()
		require.ErrorIs(t, err, context.Canceled)
		require.NoError(t, actor.Resume(bg, ref))
		st.Release()
		inf, err := fsm.Inspect(bg, ref)
		require.NoError(t, err)
		require.Equal(t, "v1", inf.Version)
		require.Equal(t, []string{"v1"}, l.open(t), "the prepared v2 was closed")
		require.NoError(t, fsm.Cast(ref, Rec{2}))
		require.Equal(t, []int{1, 2}, recordedV1(t, ref))
		require.NoError(t, actor.Stop(bg, ref, actor.Normal))
		require.Empty(t, l.open(t))
	})
}

// recordedV1 returns what the recorder ref, on v1, has recorded.
func recordedV1(t *testing.T, ref actor.Ref) []int {
	t.Helper()
	inf := info(t, ref)
	require.Equal(t, "v1", inf.Version)
	var d []int
	require.NoError(t, msgpack.Unmarshal(inf.Data, &d))
	return d
}
