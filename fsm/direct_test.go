package fsm_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/actor/actortest"
	"github.com/hotline-go/hotline/fsm"
	"github.com/stretchr/testify/require"
)

// The direct path: a cast of the event type a machine handled last in its
// state goes from the actor's Receive straight to the typed handler (see
// runtime.go). These tests send runs of one event type, so that every
// event after the first takes that path, and check that whatever the
// handler's result asks for still happens.

// Step is the event of the stepper machine; Expire its event timeout's.
type (
	Step   struct{ N int }
	Expire struct{}
)

// stepper adds each Step to its data in state "one" and moves to "two"
// once the data reaches 3, without actions; entering "two" adds 1000, and
// "two" adds 100 per Step. A Step of -1 returns the zero Result (a broken
// handler), of 99 panics, of 50 sets an event timeout.
func stepper(add int) *fsm.Machine[int] {
	m := fsm.Define("stepper", "v1", "one", 0)
	fsm.On(m, "one", func(s Step, n int) fsm.Result[int] {
		switch s.N {
		case -1:
			return fsm.Result[int]{}
		case 99:
			panic("step 99")
		case 50:
			return fsm.Keep(n, fsm.EventTimeout(time.Second, Expire{}))
		}
		if n += s.N * add; n >= 3 {
			return fsm.Next("two", n)
		}
		return fsm.Keep(n)
	})
	fsm.On(m, "two", func(s Step, n int) fsm.Result[int] { return fsm.Keep(n + 100*s.N) })
	fsm.OnAny(m, func(_ Expire, n int) fsm.Result[int] { return fsm.Keep(-n) })
	m.Enter("two", func(_ string, n int) fsm.Result[int] { return fsm.Keep(n + 1000) })
	return m
}

func TestDirectPathChangesState(t *testing.T) {
	sys := actortest.NewSystem(t)
	ref := start(t, sys, stepper(1))
	// The third Step moves to "two", whose enter handler runs at once.
	cast(t, ref, Step{1}, Step{1}, Step{1})
	require.Equal(t, "two", info(t, ref).State)
	require.Equal(t, 1000+3, data[int](t, ref))
	// The rest are "two"'s.
	cast(t, ref, Step{1}, Step{1})
	require.Equal(t, "two", info(t, ref).State)
	require.Equal(t, 1000+3+100+100, data[int](t, ref))
}

func TestDirectPathAfterChangeOfCode(t *testing.T) {
	ctx := context.Background()
	sys := actortest.NewSystem(t)
	v1 := stepper(1)
	v2b := fsm.Define("stepper", "v2", "one", 0) // "one" only: Steps add 10
	fsm.On(v2b, "one", func(s Step, n int) fsm.Result[int] { return fsm.Keep(n + 10*s.N) })
	ref := start(t, sys, v1)
	cast(t, ref, Step{0}, Step{1})         // v1's handler is the hot one
	require.NoError(t, fsm.Sync(ctx, ref)) // a change of code overtakes queued events
	require.NoError(t, fsm.ChangeCode(ctx, ref, v2b))
	cast(t, ref, Step{1}, Step{1})          // v2's, though v1's instance had Step hot
	require.Equal(t, 21, data[int](t, ref)) // data syncs first
	require.NoError(t, fsm.ChangeCode(ctx, ref, v1, fsm.AsDowngrade()))
	cast(t, ref, Step{0}) // v1 again, a new instance: 21 >= 3 moves to "two"
	require.Equal(t, "two", info(t, ref).State)
	require.Equal(t, 1021, data[int](t, ref))
}

func TestDirectPathFailures(t *testing.T) {
	ctx := context.Background()
	t.Run("zero Result stops the machine", func(t *testing.T) {
		sys := actortest.NewSystem(t)
		ref := start(t, sys, stepper(1))
		cast(t, ref, Step{0}, Step{0}, Step{-1})
		castAfterEnd(t, ref, Step{1})
		reason, err := actor.Wait(ctx, ref)
		require.NoError(t, err)
		require.ErrorIs(t, reason, fsm.ErrBadResult)
	})
	t.Run("panic ends the machine with a PanicError", func(t *testing.T) {
		sys := actortest.NewSystem(t)
		ref := start(t, sys, stepper(1))
		cast(t, ref, Step{0}, Step{0}, Step{99})
		castAfterEnd(t, ref, Step{1})
		reason, err := actor.Wait(ctx, ref)
		require.NoError(t, err)
		var p *actor.PanicError
		require.ErrorAs(t, reason, &p)
		require.Equal(t, "step 99", p.Value)
	})
}

// castAfterEnd casts ev to a machine that an earlier event stops: it is
// queued behind that event, or the machine has stopped already.
func castAfterEnd(t *testing.T, ref actor.Ref, ev any) {
	t.Helper()
	if err := fsm.Cast(ref, ev); err != nil {
		require.ErrorIs(t, err, actor.ErrNoProc)
	}
}

func TestDirectPathCancelsEventTimeout(t *testing.T) {
	for _, next := range []bool{false, true} {
		name := "fires"
		if next {
			name = "cancelled by the next direct cast"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sys := actortest.NewSystem(t)
				ref := start(t, sys, stepper(1))
				cast(t, ref, Step{1}, Step{50})
				if next {
					cast(t, ref, Step{1})
				}
				time.Sleep(2 * time.Second)
				synctest.Wait()
				want := -1 // Expire negates the data
				if next {
					want = 2
				}
				require.Equal(t, want, data[int](t, ref))
			})
		})
	}
}
