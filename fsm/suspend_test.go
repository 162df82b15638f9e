package fsm_test

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/actor/actortest"
	"github.com/hotline-go/hotline/fsm"
)

// A machine that one caller holds suspended (an operator, a release
// handler's cut) stays suspended through another's whole suspension: a
// ChangeCode that succeeds or fails, a binary restart's handoff that
// images it and then fails and resumes it. Before suspensions were
// counted, each of those resumed it, and it handled events while its
// first holder believed it held.
func TestOtherSuspensionsLeaveAHolderSuspended(t *testing.T) {
	synctest.Test(t, testOtherSuspensionsLeaveAHolderSuspended)
}

func testOtherSuspensionsLeaveAHolderSuspended(t *testing.T) {
	ctx := context.Background()
	sys := actortest.NewSystem(t)
	ref, err := fsm.Start(ctx, sys, journal("v1"))
	require.NoError(t, err)
	require.NoError(t, actor.Suspend(ctx, ref)) // the holder's
	cast(t, ref, Note{N: 1})
	held := func(what string) {
		t.Helper()
		synctest.Wait()
		q, err := actor.QueuedMessages(ctx, ref)
		require.NoError(t, err, "after %s: the holder's suspension ended", what)
		require.Len(t, q, 1, "after %s: the event was handled", what)
	}

	require.NoError(t, fsm.ChangeCode(ctx, ref, journal("v2")))
	held("a ChangeCode")
	require.ErrorIs(t, fsm.ChangeCode(ctx, ref, journal("v2")), fsm.ErrSameVersion)
	held("a ChangeCode that failed")

	// A handoff: suspend, image, and resume when the new process fails.
	require.NoError(t, actor.Suspend(ctx, ref))
	img, err := fsm.CaptureSuspended(ctx, ref)
	require.NoError(t, err)
	require.Len(t, img.Queued, 1)
	require.NoError(t, actor.Resume(ctx, ref))
	held("a failed handoff")

	require.NoError(t, actor.Resume(ctx, ref)) // the holder lets go
	require.Equal(t, []string{"v2 note 1"}, journalLog(t, ref))
	require.ErrorIs(t, actor.Resume(ctx, ref), actor.ErrNotSuspended)
}
