package fsm_test

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/actor/actortest"
	"github.com/hotline-go/hotline/fsm"
)

// The asker machine answers Ask calls and records Rec casts; v2 reads both
// in new formats, converted by its event-upgrade handlers, which count
// their calls.
type (
	Ask   struct{ N int }
	AskV2 struct{ S string }
)

func (AskV2) EventName() string { return "Ask" }

func askerV1() *fsm.Machine[[]string] {
	m := fsm.Define("asker", "v1", "open", []string(nil))
	fsm.OnAny(m, func(a Ask, d []string) fsm.Result[[]string] {
		return fsm.Keep(append(d, fmt.Sprintf("v1 ask %d", a.N)), fsm.Reply(fmt.Sprintf("v1:%d", a.N)))
	})
	fsm.OnAny(m, func(r Rec, d []string) fsm.Result[[]string] {
		return fsm.Keep(append(d, fmt.Sprintf("v1 rec %d", r.N)))
	})
	return m
}

func askerV2(conversions *atomic.Int32) *fsm.Machine[[]string] {
	m := fsm.Define("asker", "v2", "open", []string(nil))
	fsm.OnAny(m, func(a AskV2, d []string) fsm.Result[[]string] {
		return fsm.Keep(append(d, "v2 ask "+a.S), fsm.Reply("v2:"+a.S))
	})
	fsm.OnAny(m, func(r RecV2, d []string) fsm.Result[[]string] {
		return fsm.Keep(append(d, "v2 rec "+r.S))
	})
	fsm.UpgradeEvent(m, func(raw msgpack.RawMessage) (AskV2, error) {
		conversions.Add(1)
		var a Ask
		err := msgpack.Unmarshal(raw, &a)
		return AskV2{S: strconv.Itoa(a.N)}, err
	})
	fsm.UpgradeEvent(m, func(raw msgpack.RawMessage) (RecV2, error) {
		conversions.Add(1)
		var r Rec
		if err := msgpack.Unmarshal(raw, &r); err != nil {
			return RecV2{}, err
		}
		if r.N < 0 {
			return RecV2{}, fmt.Errorf("negative %d", r.N)
		}
		return RecV2{S: strconv.Itoa(r.N)}, nil
	})
	return m
}

// suspendWith suspends the asker and queues a cast, a call (whose reply
// comes back on the channel) and another cast, all of v1's types.
func suspendWith(t *testing.T, ref actor.Ref, rec int) chan any {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, actor.Suspend(ctx, ref))
	cast(t, ref, Rec{rec})
	replies := make(chan any, 1)
	go func() {
		v, err := fsm.Call(ctx, ref, Ask{7})
		if err != nil {
			v = err
		}
		replies <- v
	}()
	synctest.Wait() // the call waits in the mailbox
	cast(t, ref, Rec{8})
	return replies
}

// Events waiting in the mailbox are converted in the step that changes the
// code, once each; the new version handles them, and a call's caller gets
// its reply.
func TestQueuedEventsConvertAtChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		sys := actortest.NewSystem(t)
		ref := start(t, sys, askerV1())
		replies := suspendWith(t, ref, 6)
		var n atomic.Int32
		require.NoError(t, fsm.ChangeSuspended(ctx, ref, askerV2(&n)))
		require.Equal(t, int32(3), n.Load(), "converted at the change, before any is handled")
		require.NoError(t, actor.Resume(ctx, ref))
		require.Equal(t, "v2:7", <-replies)
		require.Equal(t, []string{"v2 rec 6", "v2 ask 7", "v2 rec 8"}, data[[]string](t, ref))
		require.Equal(t, int32(3), n.Load(), "and not again when handled")

		// An event sent in the old format after the change is converted
		// as the new version takes it.
		cast(t, ref, Rec{9})
		require.Equal(t, []string{"v2 rec 6", "v2 ask 7", "v2 rec 8", "v2 rec 9"}, data[[]string](t, ref))
		require.Equal(t, int32(4), n.Load())
	})
}

// A queued event that does not convert fails the change, which leaves the
// machine, and every event in its mailbox, as they were.
func TestQueuedEventThatDoesNotConvertFailsTheChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		sys := actortest.NewSystem(t)
		ref := start(t, sys, askerV1(), fsm.WithID("a1"))
		replies := suspendWith(t, ref, 6)
		cast(t, ref, Rec{-1})
		before, err := fsm.Inspect(ctx, ref)
		require.NoError(t, err)
		queued, err := actor.QueuedMessages(ctx, ref)
		require.NoError(t, err)

		var n atomic.Int32
		err = fsm.ChangeSuspended(ctx, ref, askerV2(&n))
		require.ErrorIs(t, err, fsm.ErrBadEvent)
		require.EqualError(t, err, "fsm: asker a1: upgrade v1 -> v2: queued event 4 of 4: fsm: cannot convert event: Rec (fsm_test.Rec) to fsm_test.RecV2: negative -1")
		after, err := fsm.Inspect(ctx, ref)
		require.NoError(t, err)
		require.Equal(t, before, after)
		q, err := actor.QueuedMessages(ctx, ref)
		require.NoError(t, err)
		require.Equal(t, queued, q, "the mailbox as it was")

		require.NoError(t, actor.Resume(ctx, ref))
		require.Equal(t, "v1:7", <-replies)
		require.Equal(t, []string{"v1 rec 6", "v1 ask 7", "v1 rec 8", "v1 rec -1"}, data[[]string](t, ref))
	})
}

// Revert puts the queued events back as they were before the change, for
// the old version to handle.
func TestRevertRestoresQueuedEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		sys := actortest.NewSystem(t)
		ref := start(t, sys, askerV1())
		replies := suspendWith(t, ref, 6)
		queued, err := actor.QueuedMessages(ctx, ref)
		require.NoError(t, err)
		var n atomic.Int32
		v2 := askerV2(&n)
		require.NoError(t, fsm.ChangeSuspended(ctx, ref, v2))
		cast(t, ref, Rec{9}) // arrives after the change: not the change's to undo
		require.NoError(t, fsm.Revert(ctx, ref))
		q, err := actor.QueuedMessages(ctx, ref)
		require.NoError(t, err)
		require.Equal(t, append(queued, actor.Queued{Msg: Rec{9}}), q)

		// Changed again and reverted again: still exact.
		require.NoError(t, fsm.ChangeSuspended(ctx, ref, v2))
		require.NoError(t, fsm.Revert(ctx, ref))
		q, err = actor.QueuedMessages(ctx, ref)
		require.NoError(t, err)
		require.Equal(t, append(queued, actor.Queued{Msg: Rec{9}}), q)

		require.NoError(t, actor.Resume(ctx, ref))
		require.Equal(t, "v1:7", <-replies)
		require.Equal(t, []string{"v1 rec 6", "v1 ask 7", "v1 rec 8", "v1 rec 9"}, data[[]string](t, ref))
	})
}

// Two changes in a row with the events still queued: each converts what
// the one before left, and a revert undoes the last only.
func TestQueuedEventsThroughTwoChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		sys := actortest.NewSystem(t)
		ref := start(t, sys, askerV1())
		replies := suspendWith(t, ref, 6)
		var n atomic.Int32
		require.NoError(t, fsm.ChangeSuspended(ctx, ref, askerV2(&n)))
		require.NoError(t, fsm.ChangeSuspended(ctx, ref, askerV1(), fsm.AsDowngrade()))
		// v1 converts v2's payloads back by msgpack, field by field: AskV2
		// and RecV2 have no field N, so N is 0.
		require.NoError(t, fsm.Revert(ctx, ref))
		inf, err := fsm.Inspect(ctx, ref)
		require.NoError(t, err)
		require.Equal(t, "v2", inf.Version)
		require.NoError(t, actor.Resume(ctx, ref))
		require.Equal(t, "v2:7", <-replies)
		require.Equal(t, []string{"v2 rec 6", "v2 ask 7", "v2 rec 8"}, data[[]string](t, ref))
	})
}

// An image of a machine whose queued events were converted holds them in
// the new version's format.
func TestImageOfConvertedQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		sys := actortest.NewSystem(t)
		ref := start(t, sys, askerV1())
		replies := suspendWith(t, ref, 6)
		var n atomic.Int32
		require.NoError(t, fsm.ChangeSuspended(ctx, ref, askerV2(&n)))
		img, err := fsm.CaptureSuspended(ctx, ref)
		require.NoError(t, err)
		require.Equal(t, "v2", img.Version)
		require.Len(t, img.Queued, 3)
		for i, want := range []any{RecV2{S: "6"}, AskV2{S: "7"}, RecV2{S: "8"}} {
			b, err := msgpack.Marshal(want)
			require.NoError(t, err)
			require.Equal(t, fsm.EventName(want), img.Queued[i].Name)
			require.Equal(t, b, img.Queued[i].Payload, "event %d", i)
		}
		require.Equal(t, fsm.KindCall, img.Queued[1].Kind)
		require.NoError(t, actor.Resume(ctx, ref))
		require.Equal(t, "v2:7", <-replies)
	})
}
