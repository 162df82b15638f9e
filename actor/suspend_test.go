package actor_test

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/actor/actortest"
)

// Suspensions are counted: several callers (a release handler, a binary
// restart's handoff, an operator) suspend a machine independently, and one
// caller's Resume must not end another's suspension. Each row takes the
// requests through one of the two ways they are carried out: at once under
// the actor's lock (the actor is on no goroutine), or through its mailbox
// (the actor is busy: here, an Inspect holds it).
func TestSuspendIsCounted(t *testing.T) {
	for _, busy := range []bool{false, true} {
		name := "idle"
		if busy {
			name = "busy"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { testSuspendIsCounted(t, busy) })
		})
	}
}

func testSuspendIsCounted(t *testing.T, busy bool) {
	s := actortest.NewSystem(t)
	ctx := context.Background()
	got := make(inbox, 10)
	r := spawn(t, s, got)
	// do runs op with the actor idle, or while an Inspect holds it, so that
	// op's request waits in the mailbox.
	do := func(op func() error) error {
		if !busy {
			return op()
		}
		holding, release := make(chan struct{}), make(chan struct{})
		inspected := make(chan error, 1)
		go func() {
			inspected <- actor.Inspect(ctx, r, func(actor.Behavior) error {
				close(holding)
				<-release
				return nil
			})
		}()
		<-holding
		done := make(chan error, 1)
		go func() { done <- op() }()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("the request did not wait for the busy actor: %v", err)
		default:
		}
		close(release)
		require.NoError(t, <-inspected)
		return <-done
	}
	suspended := func() bool {
		t.Helper()
		_, err := actor.QueuedMessages(ctx, r)
		if err == nil {
			return true
		}
		require.ErrorIs(t, err, actor.ErrNotSuspended)
		return false
	}

	require.ErrorIs(t, do(func() error { return actor.Resume(ctx, r) }), actor.ErrNotSuspended,
		"a Resume without a Suspend")
	require.NoError(t, do(func() error { return actor.Suspend(ctx, r) }))
	require.NoError(t, do(func() error { return actor.Suspend(ctx, r) }))
	require.NoError(t, actor.Send(r, 1))

	require.NoError(t, do(func() error { return actor.Resume(ctx, r) }))
	synctest.Wait()
	require.True(t, suspended(), "one Resume ended two suspensions")
	require.Empty(t, got, "a user message was handled while one suspension stood")
	require.NoError(t, actor.ChangeCode(ctx, r, func(b actor.Behavior) (actor.Behavior, error) { return b, nil }),
		"the remaining suspension is one that ChangeCode accepts")

	require.NoError(t, do(func() error { return actor.Resume(ctx, r) }))
	require.Equal(t, 1, got.next(t))
	require.False(t, suspended())
	require.ErrorIs(t, do(func() error { return actor.Resume(ctx, r) }), actor.ErrNotSuspended,
		"more Resumes than Suspends")

	// A Suspend given up (its ctx ended while it waited) counts for
	// nothing: one Resume of the Suspend that went through is enough.
	require.NoError(t, actor.Suspend(ctx, r))
	if busy {
		holding, release := make(chan struct{}), make(chan struct{})
		inspected := make(chan error, 1)
		go func() {
			inspected <- actor.Inspect(ctx, r, func(actor.Behavior) error {
				close(holding)
				<-release
				return nil
			})
		}()
		<-holding
		given, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- actor.Suspend(given, r) }()
		synctest.Wait()
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
		close(release)
		require.NoError(t, <-inspected)
	}
	require.NoError(t, actor.Send(r, 2))
	require.NoError(t, actor.Resume(ctx, r))
	require.Equal(t, 2, got.next(t))
	require.False(t, suspended())
}
