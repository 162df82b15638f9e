package actor

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// The count of suspensions does not overflow into the flags below it: the
// Suspend past the last one the count holds fails and counts nothing.
func TestSuspendCountBound(t *testing.T) {
	s := NewSystem()
	defer func() { require.NoError(t, s.Shutdown(context.Background())) }()
	ctx := context.Background()
	r, err := s.Spawn(BehaviorFunc(func(*Context, any) {}))
	require.NoError(t, err)
	require.NoError(t, Suspend(ctx, r))
	r.a.mu.Lock()
	below := r.a.flags & (suspendOne - 1)
	r.a.flags += (maxSuspends - 1) * suspendOne // as if suspended maxSuspends times
	r.a.mu.Unlock()

	require.ErrorIs(t, Suspend(ctx, r), errTooManySuspends)
	require.EqualError(t, Suspend(ctx, r), "actor: suspended 16777215 times without a resume")
	r.a.mu.Lock()
	require.Equal(t, uint32(maxSuspends), r.a.flags>>suspendShift, "a failed Suspend counted")
	require.Equal(t, below, r.a.flags&(suspendOne-1), "the count spilled into the flags")
	r.a.flags -= (maxSuspends - 1) * suspendOne
	r.a.mu.Unlock()
	require.NoError(t, Resume(ctx, r))
	require.ErrorIs(t, Resume(ctx, r), ErrNotSuspended)
}
