package upgrade

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
)

// A machine that an operator holds suspended stays suspended when a
// binary restart's handoff, which suspends every machine in turn, fails
// and resumes what it suspended. Before suspensions were counted
// (actor.Suspend), the handoff's Resume ended the operator's suspension
// too, and the machine handled events while the operator believed it
// held.
func TestFailedHandoffLeavesAHeldMachineSuspended(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "handoff")
	old, ref, _, resumed := oldSide(t, dir)
	require.NoError(t, actor.Suspend(ctx, ref)) // the operator's

	reply, done := old.upgrade(t)
	nw := successorOf(t, old, dir, WithCodes(sessionCode("v1")))
	_, err := nw.h.Receive(ctx)
	require.NoError(t, err)
	reply <- errors.New("child exited") // the new process fails before it is ready
	require.Error(t, <-done)
	require.Equal(t, int32(1), resumed.Load(), "the handoff resumed what it had paused")

	_, err = actor.QueuedMessages(ctx, ref)
	require.NoError(t, err, "the failed handoff ended the operator's suspension")
	require.NoError(t, actor.Resume(ctx, ref)) // the operator lets go
	_, err = fsm.Call(ctx, ref, Line{Text: "z"})
	require.NoError(t, err)
	require.ErrorIs(t, actor.Resume(ctx, ref), actor.ErrNotSuspended)
}
