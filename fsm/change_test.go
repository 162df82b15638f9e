package fsm_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/actor/actortest"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/fsm/fsmtest"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// The recorder machine records the events it gets, in order: v1 as ints,
// v2 as strings that say which version saw them.
type (
	Rec     struct{ N int }
	RecV2   struct{ S string }
	ArmRec  struct{ N int } // sets generic timeout "t" to deliver Rec{N} in a second
	HoldRec struct{ N int } // postpones Rec{N} until the state changes
)

func (RecV2) EventName() string { return "Rec" }

func recorderV1() *fsm.Machine[[]int] {
	m := fsm.Define("recorder", "v1", "open", []int(nil))
	fsm.OnAny(m, func(r Rec, d []int) fsm.Result[[]int] { return fsm.Keep(append(d, r.N)) })
	fsm.On(m, "held", func(_ Rec, d []int) fsm.Result[[]int] { return fsm.Keep(d, fsm.Postpone()) })
	fsm.OnAny(m, func(a ArmRec, d []int) fsm.Result[[]int] {
		return fsm.Keep(d, fsm.Timeout("t", time.Second, Rec(a)))
	})
	fsm.OnAny(m, func(mv Move, d []int) fsm.Result[[]int] { return fsm.Next(mv.To, d) })
	return m
}

func recorderV2() *fsm.Machine[[]string] {
	m := fsm.Define("recorder", "v2", "open", []string(nil))
	fsm.OnAny(m, func(r RecV2, d []string) fsm.Result[[]string] { return fsm.Keep(append(d, "v2:"+r.S)) })
	fsm.On(m, "held", func(_ RecV2, d []string) fsm.Result[[]string] { return fsm.Keep(d, fsm.Postpone()) })
	fsm.OnAny(m, func(mv Move, d []string) fsm.Result[[]string] { return fsm.Next(mv.To, d) })
	fsm.UpgradeEvent(m, func(raw msgpack.RawMessage) (RecV2, error) {
		var r Rec
		if err := msgpack.Unmarshal(raw, &r); err != nil {
			return RecV2{}, err
		}
		if r.N < 0 {
			return RecV2{}, fmt.Errorf("negative %d", r.N)
		}
		return RecV2{S: strconv.Itoa(r.N)}, nil
	})
	m.OnUpgrade(func(from, state string, raw msgpack.RawMessage) (string, []string, error) {
		var old []int
		if err := msgpack.Unmarshal(raw, &old); err != nil {
			return "", nil, err
		}
		var d []string
		for _, n := range old {
			switch {
			case n == -666:
				panic("the number of the beast")
			case n < 0:
				return "", nil, errTest
			}
			d = append(d, "v1:"+strconv.Itoa(n))
		}
		return state, d, nil
	})
	return m
}

func TestChangeCode(t *testing.T) {
	ctx := context.Background()
	sys := actortest.NewSystem(t)
	ref := start(t, sys, phoneV1(), fsm.WithID("555-0100"))
	cast(t, ref, KeyPressed{1}, KeyPressed{2}, KeyPressed{3}, Answered{}, AudioReceived{10}, AudioSent{20})
	require.Equal(t, "v1 [1 2 3] in=10 out=20 calls=1", status(t, ref))

	require.NoError(t, fsm.ChangeCode(ctx, ref, phoneV2()))
	inf := info(t, ref)
	require.Equal(t, "v2", inf.Version)
	require.Equal(t, "talking", inf.State, "UPGRADE may change the state")
	require.Equal(t, PhoneV2{Number: "123", BytesIn: 10, BytesOut: 20, Calls: 1}, data[PhoneV2](t, ref))
	cast(t, ref, AudioReceived{5})
	require.Equal(t, `v2 "123" in=15 out=20 calls=1`, status(t, ref))

	require.NoError(t, fsm.ChangeCode(ctx, ref, phoneV1(), fsm.AsDowngrade()))
	inf = info(t, ref)
	require.Equal(t, "v1", inf.Version)
	require.Equal(t, "in_progress", inf.State)
	require.Equal(t, "v1 [1 2 3] in=15 out=20 calls=1", status(t, ref))
}

// Events that arrive while a machine changes code wait, and the new
// version handles them in order; none is lost, none is handled twice.
func TestChangeCodeLosesNoEvent(t *testing.T) {
	ctx := context.Background()
	const n = 2000
	sys := actortest.NewSystem(t)
	ref := start(t, sys, recorderV1())
	for i := range n / 4 {
		cast(t, ref, Rec{i})
	}
	require.NoError(t, fsm.Sync(ctx, ref)) // handled by v1
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for i := n / 4; i < n; i++ {
			if err := fsm.Cast(ref, Rec{i}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	require.NoError(t, fsm.ChangeCode(ctx, ref, recorderV2()))
	wg.Wait()
	got := data[[]string](t, ref)
	require.Len(t, got, n)
	v1 := 0
	for i, s := range got {
		switch s {
		case "v1:" + strconv.Itoa(i):
			require.Equal(t, i, v1, "a v1 event after a v2 one")
			v1++
		case "v2:" + strconv.Itoa(i):
		default:
			t.Fatalf("event %d seen as %q", i, s)
		}
	}
	require.GreaterOrEqual(t, v1, n/4)
	t.Logf("%d events before the change, %d after", v1, n-v1)
}

func TestChangeCodeFails(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		setup  func(t *testing.T, ref actor.Ref) // the machine runs recorder v1
		to     fsm.Code
		opts   []fsm.ChangeOption
		reason error  // errors.Is
		msg    string // and its text
	}{
		{
			name:   "upgrade returns an error",
			setup:  func(t *testing.T, ref actor.Ref) { cast(t, ref, Rec{-1}) },
			to:     recorderV2(),
			reason: errTest,
			msg:    "fsm: recorder r1: upgrade v1 -> v2: test error",
		},
		{
			name:  "upgrade panics",
			setup: func(t *testing.T, ref actor.Ref) { cast(t, ref, Rec{-666}) },
			to:    recorderV2(),
			msg:   "fsm: recorder r1: upgrade v1 -> v2: actor: panic: the number of the beast",
		},
		{
			name:   "data does not decode",
			to:     fsm.Define("recorder", "v3", "open", 0), // no UPGRADE: decodes []int as int
			reason: fsm.ErrBadData,
			msg:    "fsm: recorder r1: upgrade v1 -> v3: fsm: bad machine data: recorder v3: msgpack: invalid code=",
		},
		{
			name:   "a postponed event does not convert",
			setup:  func(t *testing.T, ref actor.Ref) { cast(t, ref, Move{"held"}, Rec{-5}) },
			to:     recorderV2(),
			reason: fsm.ErrBadEvent,
			msg:    "fsm: recorder r1: upgrade v1 -> v2: fsm: cannot convert event: Rec (fsm_test.Rec) to fsm_test.RecV2: negative -5",
		},
		{
			name:   "a timeout's event does not convert",
			setup:  func(t *testing.T, ref actor.Ref) { cast(t, ref, ArmRec{-7}) },
			to:     recorderV2(),
			reason: fsm.ErrBadEvent,
			msg:    "fsm: recorder r1: upgrade v1 -> v2: fsm: cannot convert event: Rec (fsm_test.Rec) to fsm_test.RecV2: negative -7",
		},
		{
			name:   "another machine",
			to:     phoneV2(),
			reason: fsm.ErrWrongMachine,
			msg:    "fsm: recorder r1: upgrade v1 -> v2: fsm: code of another machine: phone",
		},
		{
			name:   "the same version",
			to:     recorderV1(),
			reason: fsm.ErrSameVersion,
			msg:    "fsm: recorder r1: upgrade v1 -> v1: fsm: machine already runs this version",
		},
		{
			name:   "downgrade with data the target cannot load",
			to:     fsm.Define("recorder", "v0", "open", ""),
			opts:   []fsm.ChangeOption{fsm.AsDowngrade()},
			reason: fsm.ErrBadData,
			msg:    "fsm: recorder r1: downgrade v1 -> v0: fsm: bad machine data: recorder v0: msgpack: invalid code=",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := actortest.NewSystem(t)
			ref := start(t, sys, recorderV1(), fsm.WithID("r1"))
			cast(t, ref, Rec{1}, Rec{2})
			if tt.setup != nil {
				tt.setup(t, ref)
			}
			before := info(t, ref)

			err := fsm.ChangeCode(ctx, ref, tt.to, tt.opts...)
			var ue *fsm.UpgradeError
			require.ErrorAs(t, err, &ue)
			require.Equal(t, "recorder", ue.Machine)
			require.Equal(t, "r1", ue.ID)
			require.Equal(t, "v1", ue.From)
			require.Equal(t, tt.to.Version(), ue.To)
			if tt.reason != nil {
				require.ErrorIs(t, err, tt.reason)
			}
			require.Contains(t, err.Error(), tt.msg)

			require.Equal(t, before, info(t, ref), "the machine keeps its version and data")
			cast(t, ref, Rec{3}, Move{"open"})
			require.Contains(t, data[[]int](t, ref), 3, "and goes on")
		})
	}
}

// The round trip doc/fsm.md shows.
func TestPhoneRoundTrip(t *testing.T) {
	v1 := phoneV1()
	fsmtest.RoundTrip(t, v1, phoneV2(),
		fsmtest.Sample(t, v1, "off", PhoneV1{}),
		fsmtest.Sample(t, v1, "dialing", PhoneV1{Digits: []int{5}}),
		fsmtest.Sample(t, v1, "in_progress", PhoneV1{Digits: []int{1, 2, 3}, In: 10, Calls: 1}),
		fsmtest.Sample(t, v1, "disconnecting", PhoneV1{Digits: []int{0, 0, 7}, In: 1 << 40, Out: 3, Calls: 99}),
	)
}

// The message doc/fsm.md shows.
func TestUpgradeErrorMessage(t *testing.T) {
	sys := actortest.NewSystem(t)
	snap, err := phoneV1().Snapshot("dialing", PhoneV1{Digits: []int{12}})
	require.NoError(t, err)
	ref := start(t, sys, phoneV1(), fsm.WithID("555-0100"), fsm.FromSnapshot(snap))
	err = fsm.ChangeCode(context.Background(), ref, phoneV2())
	require.EqualError(t, err, "fsm: phone 555-0100: upgrade v1 -> v2: digit 12 out of range")
}

func TestUpgradePanicIsPanicError(t *testing.T) {
	sys := actortest.NewSystem(t)
	ref := start(t, sys, recorderV1())
	cast(t, ref, Rec{-666})
	require.NoError(t, fsm.Sync(context.Background(), ref))
	err := fsm.ChangeCode(context.Background(), ref, recorderV2())
	var p *actor.PanicError
	require.ErrorAs(t, err, &p)
	require.Equal(t, "the number of the beast", p.Value)
	require.NotEmpty(t, p.Stack)
}

func TestHeldEventsSurviveChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		sys := actortest.NewSystem(t)
		ref := start(t, sys, recorderV1())
		// Rec{1} and Rec{2} postponed, Rec{3} in a timeout, Rec{4} in the
		// mailbox while the machine is suspended, all as v1 types.
		cast(t, ref, Rec{0}, Move{"held"}, Rec{1}, Rec{2}, ArmRec{3})
		require.NoError(t, fsm.Sync(ctx, ref))
		require.NoError(t, actor.Suspend(ctx, ref))
		cast(t, ref, Rec{4}, Move{"open"})
		require.NoError(t, fsm.ChangeSuspended(ctx, ref, recorderV2()))
		require.NoError(t, actor.Resume(ctx, ref))
		require.Equal(t, []string{"v1:0", "v2:1", "v2:2", "v2:4"}, data[[]string](t, ref))
		require.Equal(t, []string{"timeout:t"}, info(t, ref).Timeouts)
		time.Sleep(time.Second)
		synctest.Wait()
		require.Equal(t, []string{"v1:0", "v2:1", "v2:2", "v2:4", "v2:3"}, data[[]string](t, ref))
	})
}

func TestPhoneTimeoutSurvivesChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		sys := actortest.NewSystem(t)
		ref := start(t, sys, phoneV1())
		cast(t, ref, KeyPressed{4}, AudioReceived{1})
		time.Sleep(dialTimeout / 2)
		require.NoError(t, fsm.ChangeCode(ctx, ref, phoneV2()))
		require.Equal(t, "dialing", info(t, ref).State)
		time.Sleep(dialTimeout / 2)
		synctest.Wait()
		inf := info(t, ref)
		require.Equal(t, "off", inf.State, "v2 got v1's timeout")
		require.Equal(t, "v2", inf.Version)
	})
}

func TestChangeSuspendedAndRevert(t *testing.T) {
	ctx := context.Background()
	sys := actortest.NewSystem(t)
	ref := start(t, sys, phoneV1())
	cast(t, ref, KeyPressed{1}, KeyPressed{2}, KeyPressed{3}, AudioReceived{9})
	before := info(t, ref)

	require.ErrorIs(t, fsm.ChangeSuspended(ctx, ref, phoneV2()), actor.ErrNotSuspended)
	require.ErrorIs(t, fsm.Revert(ctx, ref), actor.ErrNotSuspended)

	require.NoError(t, actor.Suspend(ctx, ref))
	require.ErrorIs(t, fsm.Revert(ctx, ref), fsm.ErrNoRevert)
	require.NoError(t, fsm.ChangeSuspended(ctx, ref, phoneV2()))
	inf, err := fsm.Inspect(ctx, ref)
	require.NoError(t, err)
	require.Equal(t, "v2", inf.Version)
	require.NoError(t, fsm.Revert(ctx, ref))
	require.ErrorIs(t, fsm.Revert(ctx, ref), fsm.ErrNoRevert)
	inf, err = fsm.Inspect(ctx, ref)
	require.NoError(t, err)
	require.Equal(t, before, inf, "exactly as before, postponed event included")
	require.NoError(t, actor.Resume(ctx, ref))
	cast(t, ref, Answered{})
	require.Equal(t, "v1 [1 2 3] in=9 out=0 calls=1", status(t, ref))

	// Once the machine has handled an event, the change stands.
	require.NoError(t, actor.Suspend(ctx, ref))
	require.NoError(t, fsm.ChangeSuspended(ctx, ref, phoneV2()))
	require.NoError(t, actor.Resume(ctx, ref))
	status(t, ref)
	require.NoError(t, actor.Suspend(ctx, ref))
	require.ErrorIs(t, fsm.Revert(ctx, ref), fsm.ErrNoRevert)
	require.NoError(t, actor.Resume(ctx, ref))
}

func TestChangeCodeOfDeadMachine(t *testing.T) {
	ctx := context.Background()
	sys := actortest.NewSystem(t)
	ref := start(t, sys, phoneV1())
	require.NoError(t, actor.Stop(ctx, ref, nil))
	require.ErrorIs(t, fsm.ChangeCode(ctx, ref, phoneV2()), actor.ErrNoProc)
}

func TestChangeCodeContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sys := actortest.NewSystem(t)
	ref := start(t, sys, phoneV1())
	err := fsm.ChangeCode(ctx, ref, phoneV2())
	require.True(t, errors.Is(err, context.Canceled), err)
	require.Equal(t, "v1 [] in=0 out=0 calls=0", status(t, ref), "not left suspended")
}

// Data with maps whose keys msgpack neither sorts nor decodes into an any
// (map[string]string is the easy case): RoundTrip compares values, so the
// keys' order and type do not matter.
func TestRoundTripMaps(t *testing.T) {
	type byID struct {
		Names map[int]string
		Count map[string]int
	}
	type byIDV2 struct {
		Names map[int64]string
		Count map[string]int64
		Gen   int `msgpack:",omitempty"`
	}
	v1 := fsm.Define("maps", "v1", "on", byID{})
	v2 := fsm.Define("maps", "v2", "on", byIDV2{})
	v2.OnUpgrade(func(from, state string, raw msgpack.RawMessage) (string, byIDV2, error) {
		var d byIDV2
		err := msgpack.Unmarshal(raw, &d)
		return state, d, err
	})
	v2.OnDowngrade(func(to, state string, d byIDV2) (string, any, error) { return state, d, nil })
	d := byID{Names: map[int]string{}, Count: map[string]int{}}
	for i := range 20 {
		d.Names[i] = fmt.Sprint("n", i)
		d.Count[fmt.Sprint("c", i)] = i
	}
	for range 5 { // each encoding writes the keys in another order
		fsmtest.RoundTrip(t, v1, v2, fsmtest.Sample(t, v1, "on", d))
	}
	snap := fsmtest.Sample(t, v1, "on", d)
	v2bad := fsm.Define("maps", "v2", "on", byIDV2{})
	v2bad.OnUpgrade(func(from, state string, raw msgpack.RawMessage) (string, byIDV2, error) {
		var d byIDV2
		err := msgpack.Unmarshal(raw, &d)
		d.Names[3] = "changed"
		return state, d, err
	})
	v2bad.OnDowngrade(func(to, state string, d byIDV2) (string, any, error) { return state, d, nil })
	require.ErrorIs(t, fsm.RoundTrip(context.Background(), v1, v2bad, snap), fsm.ErrRoundTrip)
}
