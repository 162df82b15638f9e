package fsm_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/actor/actortest"
	"github.com/hotline-go/hotline/fsm"
)

type (
	Note struct{ N int }
	Hold struct{ N int }
	Go   struct{ To string }
)

// journal records what it handles; in state busy it postpones Hold.
func journal(version string) *fsm.Machine[[]string] {
	m := fsm.Define("journal", version, "idle", []string(nil))
	fsm.OnAny(m, func(n Note, log []string) fsm.Result[[]string] {
		return fsm.Keep(append(log, fmt.Sprintf("%s note %d", version, n.N)))
	})
	fsm.On(m, "busy", func(_ Hold, log []string) fsm.Result[[]string] { return fsm.Keep(log, fsm.Postpone()) })
	fsm.On(m, "idle", func(h Hold, log []string) fsm.Result[[]string] {
		return fsm.Keep(append(log, fmt.Sprintf("%s hold %d", version, h.N)))
	})
	fsm.OnAny(m, func(g Go, log []string) fsm.Result[[]string] { return fsm.Next(g.To, log) })
	fsm.OnAny(m, func(a Arm, log []string) fsm.Result[[]string] {
		return fsm.Keep(log, fsm.Timeout(a.Kind, a.D, Note{a.N}))
	})
	return m
}

func journalLog(t *testing.T, ref actor.Ref) []string {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, fsm.Sync(ctx, ref))
	inf, err := fsm.Inspect(ctx, ref)
	require.NoError(t, err)
	var log []string
	require.NoError(t, msgpack.Unmarshal(inf.Data, &log))
	return log
}

func TestImage(t *testing.T) {
	v2 := journal("v2")
	v2.OnUpgrade(func(from, state string, data msgpack.RawMessage) (string, []string, error) {
		var log []string
		err := msgpack.Unmarshal(data, &log)
		return state, append(log, "upgraded from "+from), err
	})
	for _, tc := range []struct {
		name  string
		code  fsm.Code
		after []string
	}{
		{name: "same version", code: journal("v1"), after: []string{"v1 note 3", "v1 hold 1", "v1 note 4"}},
		{name: "upgrade", code: v2, after: []string{"upgraded from v1", "v2 note 3", "v2 hold 1", "v2 note 4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { testImage(t, tc.code, tc.after) })
		})
	}
}

func testImage(t *testing.T, code fsm.Code, after []string) {
	ctx := context.Background()
	old, sys := actortest.NewSystem(t), actortest.NewSystem(t)
	ref, err := fsm.Start(ctx, old, journal("v1"), fsm.WithID("j1"), fsm.WithTags(map[string]string{"k": "v"}))
	require.NoError(t, err)
	for _, ev := range []any{Arm{Kind: "x", D: 10 * time.Second, N: 100}, Go{To: "busy"}, Hold{N: 1}, Note{N: 2}} {
		require.NoError(t, fsm.Cast(ref, ev))
	}
	require.NoError(t, fsm.Sync(ctx, ref))
	time.Sleep(4 * time.Second)

	_, err = fsm.CaptureSuspended(ctx, ref)
	require.ErrorIs(t, err, actor.ErrNotSuspended)
	require.NoError(t, actor.Suspend(ctx, ref))
	for _, ev := range []any{Note{N: 3}, Go{To: "idle"}, Note{N: 4}} {
		require.NoError(t, fsm.Cast(ref, ev))
	}
	img, err := fsm.CaptureSuspended(ctx, ref)
	require.NoError(t, err)
	require.Equal(t, "j1", img.ID)
	require.Equal(t, map[string]string{"k": "v"}, img.Tags)
	require.Equal(t, "busy", img.State)
	require.Len(t, img.Timeouts, 1)
	require.Equal(t, 6*time.Second, img.Timeouts[0].Remaining)
	require.Equal(t, fsm.TimeoutImage{Kind: fsm.KindTimeout, Name: "x", Remaining: 6 * time.Second,
		Event: fsm.EventImage{Kind: fsm.KindTimeout, Name: "Note", Payload: mustPack(t, Note{N: 100})}}, img.Timeouts[0])
	require.Equal(t, []fsm.EventImage{{Kind: fsm.KindCast, Name: "Hold", Payload: mustPack(t, Hold{N: 1})}}, img.Postponed)
	require.Len(t, img.Queued, 3)

	// The old machine is not changed by the capture.
	require.NoError(t, actor.Resume(ctx, ref))
	require.Equal(t, []string{"v1 note 2", "v1 note 3", "v1 hold 1", "v1 note 4"}, journalLog(t, ref))
	require.NoError(t, actor.Stop(ctx, ref, nil))

	// The image crosses a process as msgpack.
	var back fsm.Image
	require.NoError(t, msgpack.Unmarshal(mustPack(t, img), &back))
	nref, err := fsm.Start(ctx, sys, code, fsm.FromImage(back))
	require.NoError(t, err)
	want := append([]string{"v1 note 2"}, after...)
	require.Equal(t, want, journalLog(t, nref))
	inf, err := fsm.Inspect(ctx, nref)
	require.NoError(t, err)
	require.Equal(t, "j1", inf.ID)
	require.Equal(t, "idle", inf.State)
	require.Equal(t, []string{"timeout:x"}, inf.Timeouts)

	time.Sleep(6*time.Second - time.Millisecond)
	synctest.Wait()
	require.Equal(t, want, journalLog(t, nref), "the timeout runs for the time it had left")
	time.Sleep(time.Millisecond)
	synctest.Wait() // the timer has sent its message
	require.Equal(t, append(want, code.Version()+" note 100"), journalLog(t, nref))
}

func TestImageErrors(t *testing.T) {
	ctx := context.Background()
	sys := actortest.NewSystem(t)
	img := fsm.Image{Snapshot: fsm.Snapshot{Machine: "journal", Version: "v1", State: "idle", Data: mustPack(t, []string{})}}
	_, err := fsm.Start(ctx, sys, alarm(), fsm.FromImage(img))
	require.ErrorIs(t, err, fsm.ErrWrongMachine)
	bad := img
	bad.Queued = []fsm.EventImage{{Name: "Nope", Payload: mustPack(t, 1)}}
	_, err = fsm.Start(ctx, sys, journal("v1"), fsm.FromImage(bad))
	require.ErrorIs(t, err, fsm.ErrUnknownEvent)
	bad.Queued = []fsm.EventImage{{Name: "Note", Payload: []byte{0xc1}}}
	_, err = fsm.Start(ctx, sys, journal("v1"), fsm.FromImage(bad))
	require.ErrorIs(t, err, fsm.ErrBadEvent)
	bad.Data = []byte{0xc1}
	_, err = fsm.Start(ctx, sys, journal("v1"), fsm.FromImage(bad))
	require.ErrorIs(t, err, fsm.ErrBadData)
}

func mustPack(t *testing.T, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	require.NoError(t, err)
	return b
}

// A timeout that had fired, its event waiting in the mailbox behind an
// event and ahead of another, is handled in that place by the restored
// machine; one that is due and had not fired (its time ran out between
// the capture and the restore) comes after the queued events; timeouts
// due at one place go by deadline. Before, every timeout with no time left
// was handled before the queued events.
func TestImageFiredTimeoutKeepsItsPlace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		old, sys := actortest.NewSystem(t), actortest.NewSystem(t)
		ref, err := fsm.Start(ctx, old, journal("v1"))
		require.NoError(t, err)
		require.NoError(t, fsm.Cast(ref, Arm{Kind: "a", D: time.Second, N: 100}))
		require.NoError(t, fsm.Cast(ref, Arm{Kind: "b", D: 5 * time.Second, N: 200}))
		require.NoError(t, fsm.Cast(ref, Arm{Kind: "c", D: 4 * time.Second, N: 300}))
		require.NoError(t, fsm.Sync(ctx, ref))
		require.NoError(t, actor.Suspend(ctx, ref))
		require.NoError(t, fsm.Cast(ref, Note{N: 1}))
		time.Sleep(time.Second)
		synctest.Wait() // a's message waits behind note 1
		require.NoError(t, fsm.Cast(ref, Note{N: 2}))

		img, err := fsm.CaptureSuspended(ctx, ref)
		require.NoError(t, err)
		require.Equal(t, time.Now(), img.Captured)
		require.Len(t, img.Queued, 2)
		require.Len(t, img.Timeouts, 3)
		a, b, c := img.Timeouts[0], img.Timeouts[1], img.Timeouts[2]
		require.True(t, a.Fired)
		require.Equal(t, 1, a.Ahead)
		require.Zero(t, a.Remaining)
		require.False(t, b.Fired)
		require.Equal(t, 4*time.Second, b.Remaining)
		require.Equal(t, 3*time.Second, c.Remaining)
		require.NoError(t, actor.Stop(ctx, ref, nil))

		// Restored 3.5 s later, as a handoff does: the time elapsed is
		// taken off; c is then overdue, b has 0.5 s left.
		for i := range img.Timeouts {
			img.Timeouts[i].Remaining -= 3500 * time.Millisecond
		}
		nref, err := fsm.Start(ctx, sys, journal("v1"), fsm.FromImage(img))
		require.NoError(t, err)
		require.Equal(t, []string{"v1 note 1", "v1 note 100", "v1 note 2", "v1 note 300"}, journalLog(t, nref))
		time.Sleep(500*time.Millisecond - time.Nanosecond)
		synctest.Wait()
		require.Len(t, journalLog(t, nref), 4, "b has 0.5 s left")
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		require.Equal(t, "v1 note 200", journalLog(t, nref)[4])
	})
}

// Timeouts due together in a restored image are handled by deadline, the
// most overdue first, then in the order set.
func TestImageDueTimeoutsByDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		sys := actortest.NewSystem(t)
		ev := func(n int) fsm.EventImage {
			return fsm.EventImage{Kind: fsm.KindTimeout, Name: "Note", Payload: mustPack(t, Note{N: n})}
		}
		img := fsm.Image{Snapshot: fsm.Snapshot{Machine: "journal", Version: "v1", State: "idle", Data: mustPack(t, []string{})},
			Timeouts: []fsm.TimeoutImage{
				{Kind: fsm.KindTimeout, Name: "x", Remaining: -time.Second, Event: ev(1)},
				{Kind: fsm.KindTimeout, Name: "y", Remaining: -2 * time.Second, Event: ev(2)},
				{Kind: fsm.KindTimeout, Name: "z", Remaining: -time.Second, Event: ev(3)},
				{Kind: fsm.KindTimeout, Name: "w", Remaining: time.Second, Event: ev(4)},
			},
			Queued: []fsm.EventImage{{Kind: fsm.KindCast, Name: "Note", Payload: mustPack(t, Note{N: 0})}},
		}
		ref, err := fsm.Start(ctx, sys, journal("v1"), fsm.FromImage(img))
		require.NoError(t, err)
		require.Equal(t, []string{"v1 note 0", "v1 note 2", "v1 note 1", "v1 note 3"}, journalLog(t, ref))
		time.Sleep(time.Second)
		synctest.Wait()
		require.Equal(t, []string{"v1 note 0", "v1 note 2", "v1 note 1", "v1 note 3", "v1 note 4"}, journalLog(t, ref))
	})
}

// An fsm machine traps no exits and monitors nothing (its handlers have no
// actor.Context), so an actor.Exit or an actor.Down reaches its mailbox
// only as a message another actor sent it: here a watcher forwards the
// signals it gets. Their Refs name actors of the old process, which mean
// nothing in another, and msgpack cannot write them: before, the image
// carried them as casts with the Refs written as empty maps and the
// reasons as strings, and the new process's machine got an Exit from the
// zero Ref whose reason was no longer actor.Killed (or, without a handler
// for them, refused to start). CaptureSuspended now refuses, naming them,
// and the machine is left as it was.
func TestImageRefusesSignals(t *testing.T) {
	synctest.Test(t, testImageRefusesSignals)
}

func testImageRefusesSignals(t *testing.T) {
	ctx := context.Background()
	sys := actortest.NewSystem(t)
	code := journal("v1")
	fsm.OnAny(code, func(e actor.Exit, log []string) fsm.Result[[]string] {
		return fsm.Keep(append(log, fmt.Sprintf("exit of %v, killed %v", e.From, errors.Is(e.Reason, actor.Killed))))
	})
	fsm.OnAny(code, func(d actor.Down, log []string) fsm.Result[[]string] {
		return fsm.Keep(append(log, fmt.Sprintf("down of %v: %v", d.Actor, d.Reason)))
	})
	ref, err := fsm.Start(ctx, sys, code)
	require.NoError(t, err)
	linked, watched := actortest.NewProbe(t, sys), actortest.NewProbe(t, sys)
	watcher, err := sys.Spawn(actor.BehaviorFunc(func(c *actor.Context, msg any) {
		if msg == "watch" {
			c.TrapExits(true)
			c.Link(linked.Ref())
			c.Monitor(watched.Ref())
			c.Reply(nil)
			return
		}
		if err := actor.Send(ref, msg); err != nil {
			t.Errorf("forward %v: %v", msg, err)
		}
	}))
	require.NoError(t, err)
	_, err = actor.Call(ctx, watcher, "watch")
	require.NoError(t, err)

	require.NoError(t, actor.Suspend(ctx, ref))
	cast(t, ref, Note{N: 1})
	require.NoError(t, actor.Kill(linked.Ref()))
	_, err = actor.Wait(ctx, linked.Ref())
	require.NoError(t, err)
	require.NoError(t, actor.Stop(ctx, watched.Ref(), errors.New("boom")))
	synctest.Wait()
	cast(t, ref, Note{N: 2})

	_, err = fsm.CaptureSuspended(ctx, ref)
	require.ErrorIs(t, err, fsm.ErrSignalQueued)
	require.EqualError(t, err, fmt.Sprintf("fsm: capture %v: fsm: a signal's message cannot leave the process: "+
		"queued message 2 of 4 is an actor.Exit from %v (actor: killed); "+
		"queued message 3 of 4 is an actor.Down of %v (boom)", ref, linked.Ref(), watched.Ref()))

	require.NoError(t, actor.Resume(ctx, ref))
	require.Equal(t, []string{
		"v1 note 1",
		fmt.Sprintf("exit of %v, killed true", linked.Ref()),
		fmt.Sprintf("down of %v: boom", watched.Ref()),
		"v1 note 2",
	}, journalLog(t, ref), "the refused capture changed the machine")
	require.NoError(t, actor.Suspend(ctx, ref))
	img, err := fsm.CaptureSuspended(ctx, ref)
	require.NoError(t, err, "once handled, the machine is captured")
	require.NoError(t, actor.Resume(ctx, ref))
	moved, err := fsm.Start(ctx, actortest.NewSystem(t), code, fsm.FromImage(img))
	require.NoError(t, err)
	require.Equal(t, journalLog(t, ref), journalLog(t, moved))
}
