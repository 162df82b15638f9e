package fsm_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

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

// A ChangeCode whose UPGRADE fails with an error that wraps
// actor.ErrNoProc (it asked an actor that had exited) resumes the machine,
// which is alive and keeps its version, as for any other failed change.
// Before, ChangeCode took any such error for the machine's own exit and
// returned without its Resume: the machine stayed suspended for good.
func TestChangeCodeFailingWithNoProcResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		sys := actortest.NewSystem(t)
		ref, err := fsm.Start(ctx, sys, journal("v1"))
		require.NoError(t, err)
		v2 := journal("v2")
		v2.OnUpgrade(func(string, string, msgpack.RawMessage) (string, []string, error) {
			return "", nil, fmt.Errorf("ask the directory: %w", actor.ErrNoProc)
		})
		require.ErrorIs(t, fsm.ChangeCode(ctx, ref, v2), actor.ErrNoProc)
		require.ErrorIs(t, actor.Resume(ctx, ref), actor.ErrNotSuspended, "ChangeCode ended its suspension")
		cast(t, ref, Note{N: 1})
		require.Equal(t, []string{"v1 note 1"}, journalLog(t, ref))
	})
}
