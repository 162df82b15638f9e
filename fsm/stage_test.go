package fsm_test

import (
	"context"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/actor/actortest"
	"github.com/hotline-go/hotline/fsm"
)

// upgradeCounter wraps a Code and counts its UPGRADE runs.
type upgradeCounter struct {
	fsm.Code
	n *atomic.Int32
}

func (c upgradeCounter) Upgrade(ctx context.Context, from, state string, data []byte) (fsm.Instance, error) {
	c.n.Add(1)
	return c.Code.Upgrade(ctx, from, state, data)
}

// suspended runs f with ref suspended, and resumes it.
func suspended(t *testing.T, ref actor.Ref, f func() error) error {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, actor.Suspend(ctx, ref))
	err := f()
	require.NoError(t, actor.Resume(ctx, ref))
	return err
}

// stagedChange moves ref to to with st, with between run after Prepare
// (the machine running), and returns Prepare's or Commit's error.
func stagedChange(t *testing.T, st *fsm.Stager, ref actor.Ref, to fsm.Code, between func(), opts ...fsm.ChangeOption) error {
	t.Helper()
	ctx := context.Background()
	defer st.Release()
	require.NoError(t, suspended(t, ref, func() error { return st.Stage(ctx, ref) }))
	if err := st.Prepare(ctx, to, opts...); err != nil {
		return err
	}
	if between != nil {
		between()
	}
	return suspended(t, ref, func() error { return st.Commit(ctx, ref) })
}

// A staged change ends where ChangeCode ends, and UPGRADE runs once, before
// the second suspension.
func TestStagerChangesAsChangeCode(t *testing.T) {
	ctx := context.Background()
	sys := actortest.NewSystem(t)
	events := []any{KeyPressed{1}, KeyPressed{2}, KeyPressed{3}, Answered{}, AudioReceived{10}, AudioSent{20}}
	want := start(t, sys, phoneV1(), fsm.WithID("555-0100"))
	cast(t, want, events...)
	require.NoError(t, fsm.ChangeCode(ctx, want, phoneV2()))

	ref := start(t, sys, phoneV1(), fsm.WithID("555-0100"))
	cast(t, ref, events...)
	require.NoError(t, fsm.Sync(ctx, ref))
	st := fsm.NewStager()
	var ups atomic.Int32
	err := stagedChange(t, st, ref, upgradeCounter{phoneV2(), &ups}, func() {
		require.EqualValues(t, 1, ups.Load(), "UPGRADE ran on the copy, with the machine running")
		require.Equal(t, "v1", info(t, ref).Version)
	})
	require.NoError(t, err)
	require.EqualValues(t, 1, ups.Load(), "the prepared instance was put in place")
	require.Equal(t, info(t, want), info(t, ref))
	cast(t, ref, AudioReceived{5})
	require.Equal(t, `v2 "123" in=15 out=20 calls=1`, status(t, ref))

	// And back, through the downgrade direction, with the same Stager.
	require.NoError(t, fsm.ChangeCode(ctx, want, phoneV1(), fsm.AsDowngrade()))
	cast(t, want, AudioReceived{5})
	require.NoError(t, stagedChange(t, st, ref, phoneV1(), nil, fsm.AsDowngrade()))
	require.Equal(t, info(t, want), info(t, ref))
	require.Equal(t, "v1 [1 2 3] in=15 out=20 calls=1", status(t, ref))
}

// An event handled between Stage and Commit is not lost: Commit makes the
// whole change on the data as it is then.
func TestStagerEventBetween(t *testing.T) {
	sys := actortest.NewSystem(t)
	ref := start(t, sys, recorderV1())
	cast(t, ref, Rec{1})
	st := fsm.NewStager()
	var ups atomic.Int32
	err := stagedChange(t, st, ref, upgradeCounter{recorderV2(), &ups}, func() {
		cast(t, ref, Rec{2})
		require.NoError(t, fsm.Sync(context.Background(), ref)) // handled
	})
	require.NoError(t, err)
	require.EqualValues(t, 2, ups.Load(), "UPGRADE ran again on the current data")
	require.Equal(t, []string{"v1:1", "v1:2"}, data[[]string](t, ref))
	require.Equal(t, "v2", info(t, ref).Version)
}

// Held events (postponed, in a timeout) are converted by Prepare, those in
// the mailbox by Commit; a revert puts everything back.
func TestStagerHeldAndQueuedEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		sys := actortest.NewSystem(t)
		ref := start(t, sys, recorderV1())
		cast(t, ref, Rec{0}, Move{"held"}, Rec{1}, Rec{2}, ArmRec{3})
		require.NoError(t, fsm.Sync(ctx, ref))
		st := fsm.NewStager()
		defer st.Release()
		require.NoError(t, suspended(t, ref, func() error { return st.Stage(ctx, ref) }))
		require.NoError(t, st.Prepare(ctx, recorderV2()))

		require.NoError(t, actor.Suspend(ctx, ref))
		before, err := fsm.Inspect(ctx, ref)
		require.NoError(t, err)
		cast(t, ref, Rec{4}, Move{"open"}) // in the mailbox
		require.NoError(t, st.Commit(ctx, ref))
		changed, err := fsm.Inspect(ctx, ref)
		require.NoError(t, err)
		require.Equal(t, "v2", changed.Version)
		require.NoError(t, fsm.Revert(ctx, ref))
		after, err := fsm.Inspect(ctx, ref)
		require.NoError(t, err)
		require.Equal(t, before, after, "the revert put back what the staged change replaced")
		require.NoError(t, actor.Resume(ctx, ref))
		require.Equal(t, []int{0, 1, 2, 4}, data[[]int](t, ref), "the queued events as sent, to v1")

		cast(t, ref, Move{"held"}, Rec{5})
		require.NoError(t, stagedChange(t, st, ref, recorderV2(), func() {}))
		require.NoError(t, suspended(t, ref, func() error {
			cast(t, ref, Rec{6}, Move{"open"})
			return nil
		}))
		require.Equal(t, []string{"v1:0", "v1:1", "v1:2", "v1:4", "v2:5", "v2:6"}, data[[]string](t, ref))
		require.Equal(t, []string{"timeout:t"}, info(t, ref).Timeouts)
		time.Sleep(time.Second)
		synctest.Wait()
		require.Equal(t, []string{"v1:0", "v1:1", "v1:2", "v1:4", "v2:5", "v2:6", "v2:3"}, data[[]string](t, ref))
	})
}

// What fails fails as ChangeSuspended fails, and the machine keeps its
// version, data and events.
func TestStagerFails(t *testing.T) {
	ctx := context.Background()
	sys := actortest.NewSystem(t)
	t.Run("UPGRADE", func(t *testing.T) {
		ref := start(t, sys, recorderV1(), fsm.WithID("r1"))
		cast(t, ref, Rec{-1})
		require.NoError(t, fsm.Sync(ctx, ref))
		err := stagedChange(t, fsm.NewStager(), ref, recorderV2(), nil)
		var ue *fsm.UpgradeError
		require.ErrorAs(t, err, &ue)
		require.Equal(t, fsm.UpgradeError{Machine: "recorder", ID: "r1", From: "v1", To: "v2", Err: errTest}, *ue)
		require.Equal(t, []int{-1}, data[[]int](t, ref))
	})
	t.Run("same version and wrong machine", func(t *testing.T) {
		ref := start(t, sys, recorderV1())
		require.ErrorIs(t, stagedChange(t, fsm.NewStager(), ref, recorderV1(), nil), fsm.ErrSameVersion)
		require.ErrorIs(t, stagedChange(t, fsm.NewStager(), ref, phoneV2(), nil), fsm.ErrWrongMachine)
	})
	t.Run("a held event that does not convert", func(t *testing.T) {
		ref := start(t, sys, recorderV1())
		cast(t, ref, Move{"held"}, Rec{-2})
		require.NoError(t, fsm.Sync(ctx, ref))
		require.ErrorContains(t, stagedChange(t, fsm.NewStager(), ref, recorderV2(), nil), "negative -2")
		require.Equal(t, "v1", info(t, ref).Version)
	})
	t.Run("a queued event that does not convert", func(t *testing.T) {
		ref := start(t, sys, recorderV1())
		st := fsm.NewStager()
		defer st.Release()
		require.NoError(t, suspended(t, ref, func() error { return st.Stage(ctx, ref) }))
		require.NoError(t, st.Prepare(ctx, recorderV2()))
		err := suspended(t, ref, func() error {
			cast(t, ref, Rec{-3})
			return st.Commit(ctx, ref)
		})
		require.ErrorContains(t, err, "negative -3")
		require.Equal(t, "v1", info(t, ref).Version)
		require.Equal(t, []int{-3}, data[[]int](t, ref))
	})
	t.Run("misuse", func(t *testing.T) {
		ref := start(t, sys, recorderV1())
		st := fsm.NewStager()
		require.ErrorIs(t, st.Stage(ctx, ref), actor.ErrNotSuspended)
		require.ErrorContains(t, suspended(t, ref, func() error { return st.Commit(ctx, ref) }), "without Prepare")
		other, err := sys.Spawn(actor.BehaviorFunc(func(*actor.Context, any) {}))
		require.NoError(t, err)
		require.ErrorIs(t, suspended(t, other, func() error { return st.Stage(ctx, other) }), fsm.ErrNotMachine)
		require.NoError(t, actor.Stop(ctx, ref, nil))
		require.ErrorIs(t, st.Stage(ctx, ref), actor.ErrNoProc)
	})
}

// A machine whose last change can still be reverted is not staged: the
// change stays revertible, and Commit makes the whole change. Staging a
// machine makes no change to revert.
func TestStagerKeepsARevertibleChange(t *testing.T) {
	ctx := context.Background()
	sys := actortest.NewSystem(t)
	ref := start(t, sys, phoneV1())
	cast(t, ref, KeyPressed{1}, KeyPressed{2}, KeyPressed{3}, Answered{}, AudioReceived{10})
	before := info(t, ref)
	st := fsm.NewStager()
	defer st.Release()

	require.NoError(t, actor.Suspend(ctx, ref))
	require.NoError(t, st.Stage(ctx, ref))
	require.ErrorIs(t, fsm.Revert(ctx, ref), fsm.ErrNoRevert)
	require.NoError(t, fsm.ChangeSuspended(ctx, ref, phoneV2()))
	require.NoError(t, st.Stage(ctx, ref))
	require.NoError(t, fsm.Revert(ctx, ref), "the change made before Stage")
	inf, err := fsm.Inspect(ctx, ref)
	require.NoError(t, err)
	require.Equal(t, before, inf)

	require.NoError(t, fsm.ChangeSuspended(ctx, ref, phoneV2()))
	require.NoError(t, st.Stage(ctx, ref))
	require.NoError(t, actor.Resume(ctx, ref))
	require.NoError(t, st.Prepare(ctx, phoneV1(), fsm.AsDowngrade()))
	require.NoError(t, suspended(t, ref, func() error { return st.Commit(ctx, ref) }))
	require.Equal(t, before, info(t, ref))
	require.Equal(t, "v1 [1 2 3] in=10 out=0 calls=1", status(t, ref))
}

// Release closes a prepared instance that Commit did not use; one that it
// used is the machine's.
func TestStagerClosesWhatItDoesNotUse(t *testing.T) {
	ctx := context.Background()
	l := &closeLog{}
	sys := actortest.NewSystem(t)
	v1, v2 := closingCode{recorderV1(), l}, closingCode{recorderV2(), l}
	ref, err := fsm.Start(ctx, sys, v1)
	require.NoError(t, err)
	st := fsm.NewStager()
	require.NoError(t, stagedChange(t, st, ref, v2, func() {
		require.NoError(t, fsm.Cast(ref, Move{"open"}))
		require.NoError(t, fsm.Sync(ctx, ref))
	}))
	require.Equal(t, []string{"v1", "v2"}, l.open(t), "the prepared v2 was closed, the v1 kept for a Revert")
	require.NoError(t, fsm.Cast(ref, Move{"open"}))
	require.NoError(t, fsm.Sync(ctx, ref))
	require.Equal(t, []string{"v2"}, l.open(t))
	require.NoError(t, stagedChange(t, st, ref, v1, nil, fsm.AsDowngrade()))
	require.Equal(t, []string{"v2", "v1"}, l.open(t), "the copy the downgrade ran on was closed; v2 kept for a Revert")
	require.Len(t, l.made, 5)
	require.NoError(t, actor.Stop(ctx, ref, actor.Normal))
	require.Empty(t, l.open(t))
}

// The suspensions of a staged change of an in-process machine (its
// mailbox empty) allocate nothing, so that garbage collection is unlikely
// to start or assist in them.
func TestStagerWindowsAllocateNothing(t *testing.T) {
	ctx := context.Background()
	sys := actortest.NewSystem(t)
	ref := start(t, sys, stageDataV1())
	st := fsm.NewStager()
	codes := []fsm.Code{stageDataV2(), stageDataV1()}
	var opts [2][]fsm.ChangeOption
	opts[1] = []fsm.ChangeOption{fsm.AsDowngrade()}
	var ms runtime.MemStats
	window := func(f func() error) uint64 {
		runtime.ReadMemStats(&ms)
		before := ms.Mallocs
		require.NoError(t, actor.Suspend(ctx, ref))
		runtime.ReadMemStats(&ms) // from the suspension on, as the release handler measures its pause
		before = ms.Mallocs
		err := f()
		require.NoError(t, actor.Resume(ctx, ref))
		runtime.ReadMemStats(&ms)
		require.NoError(t, err)
		return ms.Mallocs - before
	}
	// MemStats counts the whole process: the machine's worker may still
	// be finishing the previous event on another thread when a window
	// starts. So this counts the windows that allocated: neither Stage's
	// (it copies the data into the Stager's copy of the last machine of
	// its type, reusing its memory) nor Commit's should (ChangeSuspended
	// allocates a dozen times there).
	var over [2]int
	const n = 50
	for i := range 2 * n {
		a := window(func() error { return st.Stage(ctx, ref) })
		require.NoError(t, st.Prepare(ctx, codes[i%2], opts[i%2]...))
		c := window(func() error { return st.Commit(ctx, ref) })
		st.Release()
		cast(t, ref, Ping{}) // so that the change cannot be reverted, and the next is staged
		require.NoError(t, fsm.Sync(ctx, ref))
		if i < 2 {
			continue // the first changes size the buffers
		}
		if a > 0 {
			over[0]++
		}
		if c > 0 {
			over[1]++
		}
	}
	require.Equal(t, "v1", info(t, ref).Version)
	t.Logf("of %d changes, %d allocated in Stage's window, %d in Commit's", 2*n-2, over[0], over[1])
	require.LessOrEqual(t, over[0], n/10, "Stage's windows that allocated")
	require.LessOrEqual(t, over[1], n/10, "Commit's windows that allocated")
}

// stageData is about 200 bytes of msgpack, as the release handler's
// benchmark machines.
type stageData struct {
	Name    string
	Numbers []int
	Blob    []byte
}

// Ping is an event that changes nothing.
type Ping struct{}

type stageDataV2x struct {
	stageData
	Gen int
}

func stageDataV1() *fsm.Machine[stageData] {
	m := fsm.Define("benchdata", "v1", "on", stageData{})
	fsm.OnAny(m, func(_ Ping, d stageData) fsm.Result[stageData] { return fsm.Keep(d) })
	m.InitFunc(func(id string) (string, stageData) {
		return "on", stageData{Name: id, Numbers: []int{1, 2, 3, 4, 5, 6, 7, 8}, Blob: make([]byte, 150)}
	})
	return m
}

func stageDataV2() *fsm.Machine[stageDataV2x] {
	m := fsm.Define("benchdata", "v2", "on", stageDataV2x{})
	fsm.OnAny(m, func(_ Ping, d stageDataV2x) fsm.Result[stageDataV2x] { return fsm.Keep(d) })
	m.OnUpgrade(func(from, state string, raw msgpack.RawMessage) (string, stageDataV2x, error) {
		var d stageDataV2x
		err := msgpack.Unmarshal(raw, &d.stageData)
		d.Gen = 2
		return state, d, err
	})
	m.OnDowngrade(func(to, state string, d stageDataV2x) (string, any, error) {
		return state, d.stageData, nil
	})
	return m
}

// A second Stager may stage a machine that another staged (a marker
// holds nothing); the first then finds its marker gone, as after an
// event, and makes the whole change.
func TestStagerOverAnotherStagersMarker(t *testing.T) {
	ctx := context.Background()
	sys := actortest.NewSystem(t)
	ref := start(t, sys, recorderV1())
	cast(t, ref, Rec{1})
	require.NoError(t, fsm.Sync(ctx, ref))
	first, second := fsm.NewStager(), fsm.NewStager()
	defer first.Release()
	var ups atomic.Int32
	require.NoError(t, suspended(t, ref, func() error { return first.Stage(ctx, ref) }))
	require.NoError(t, first.Prepare(ctx, upgradeCounter{recorderV2(), &ups}))
	require.NoError(t, stagedChange(t, second, ref, upgradeCounter{recorderV2(), &ups}, nil))
	require.EqualValues(t, 2, ups.Load(), "once on each copy")
	require.Equal(t, "v2", info(t, ref).Version)
	require.ErrorIs(t, suspended(t, ref, func() error { return first.Commit(ctx, ref) }), fsm.ErrSameVersion)
	require.Equal(t, []string{"v1:1"}, data[[]string](t, ref))
}

// Scribble writes into the machine's data in place: into the array its
// Numbers slice shares with every copy of the data's struct.
type Scribble struct{}

// Stage copies the data deeply: a handler that writes into its data's
// memory after Stage (here, in place into a slice) does not change what
// Prepare's UPGRADE reads, and Commit, seeing the event, makes the whole
// change on the data as the handler left it. (Under the race detector a
// copy that shared the slice would also be a race.)
func TestStagerCopyIsItsOwn(t *testing.T) {
	ctx := context.Background()
	sys := actortest.NewSystem(t)
	v1 := fsm.Define("poked", "v1", "on", stageData{})
	v1.InitFunc(func(id string) (string, stageData) { return "on", stageData{Name: id, Numbers: []int{1, 2, 3}} })
	fsm.On(v1, "on", func(_ Scribble, d stageData) fsm.Result[stageData] {
		d.Numbers[0] = 99
		return fsm.Keep(d)
	})
	var seen []int // Numbers[0] as each UPGRADE read it
	v2 := fsm.Define("poked", "v2", "on", stageData{})
	v2.OnUpgrade(func(from, state string, raw msgpack.RawMessage) (string, stageData, error) {
		var d stageData
		err := msgpack.Unmarshal(raw, &d)
		seen = append(seen, d.Numbers[0])
		return state, d, err
	})
	fsm.OnAny(v2, func(_ Ping, d stageData) fsm.Result[stageData] { return fsm.Keep(d, fsm.Reply(d.Numbers[0])) })

	ref := start(t, sys, v1)
	st := fsm.NewStager()
	require.NoError(t, stagedChange(t, st, ref, v2, nil), "no event between")
	require.Equal(t, []int{1}, seen)

	seen = nil
	ref = start(t, sys, v1)
	require.NoError(t, suspended(t, ref, func() error { return st.Stage(ctx, ref) }))
	cast(t, ref, Scribble{})
	require.NoError(t, fsm.Sync(ctx, ref))
	require.NoError(t, st.Prepare(ctx, v2))
	require.NoError(t, suspended(t, ref, func() error { return st.Commit(ctx, ref) }))
	st.Release()
	require.Equal(t, []int{1, 99}, seen, "UPGRADE on the staged copy, then on the data as Scribble left it")
	v, err := fsm.Call(ctx, ref, Ping{})
	require.NoError(t, err)
	require.Equal(t, 99, v)
}

// lineData's map holds structs with an unexported field: a map's values
// are not addressable, and the copier reaches unexported fields through
// their address.
type lineData struct{ Lines map[string]lineState }

type lineState struct {
	Digits []int
	dialed int // not encoded; copied all the same
}

// Stage copies data whose map holds structs with unexported fields (it
// panicked, and the machine was not staged: Commit made the whole change
// in its window), and the copy is its own.
func TestStagerCopiesMapsOfStructs(t *testing.T) {
	ctx := context.Background()
	sys := actortest.NewSystem(t)
	v1 := fsm.Define("lines", "v1", "on", lineData{})
	v1.InitFunc(func(id string) (string, lineData) {
		return "on", lineData{Lines: map[string]lineState{"a": {Digits: []int{1, 2}, dialed: 2}}}
	})
	fsm.On(v1, "on", func(_ Scribble, d lineData) fsm.Result[lineData] {
		d.Lines["a"].Digits[0] = 99
		return fsm.Keep(d)
	})
	var seen []int // Lines["a"].Digits[0] as each UPGRADE read it
	v2 := fsm.Define("lines", "v2", "on", lineData{})
	v2.OnUpgrade(func(from, state string, raw msgpack.RawMessage) (string, lineData, error) {
		var d lineData
		err := msgpack.Unmarshal(raw, &d)
		seen = append(seen, d.Lines["a"].Digits[0])
		return state, d, err
	})

	ref := start(t, sys, v1)
	st := fsm.NewStager()
	require.NoError(t, suspended(t, ref, func() error { return st.Stage(ctx, ref) }))
	cast(t, ref, Scribble{})
	require.NoError(t, fsm.Sync(ctx, ref))
	require.NoError(t, st.Prepare(ctx, v2))
	require.Equal(t, []int{1}, seen, "UPGRADE on the staged copy, made before Scribble")
	require.NoError(t, suspended(t, ref, func() error { return st.Commit(ctx, ref) }))
	st.Release()
	require.Equal(t, []int{1, 99}, seen, "then on the data as Scribble left it")
	require.Equal(t, "v2", info(t, ref).Version)
}

// peerData holds addresses, which encode themselves (netip.Addr's
// MarshalBinary).
type peerData struct {
	Peer  netip.Addr
	Peers []netip.AddrPort
}

// A staged change gives UPGRADE the data as the machine holds it: a copy
// of a netip.Addr made its interned zone anew, and UPGRADE read 10.0.0.1
// as ::ffff:10.0.0.1 (an IPv6 address, with an empty zone).
func TestStagerKeepsAddresses(t *testing.T) {
	ctx := context.Background()
	sys := actortest.NewSystem(t)
	want := peerData{Peer: netip.MustParseAddr("10.0.0.1"), Peers: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.7:5060")}}
	v1 := fsm.Define("peer", "v1", "on", peerData{})
	v1.InitFunc(func(id string) (string, peerData) { return "on", want })
	var seen []peerData
	v2 := fsm.Define("peer", "v2", "on", peerData{})
	v2.OnUpgrade(func(from, state string, raw msgpack.RawMessage) (string, peerData, error) {
		var d peerData
		err := msgpack.Unmarshal(raw, &d)
		seen = append(seen, d)
		return state, d, err
	})
	ref := start(t, sys, v1)
	st := fsm.NewStager()
	require.NoError(t, suspended(t, ref, func() error { return st.Stage(ctx, ref) }))
	require.NoError(t, st.Prepare(ctx, v2))
	require.NoError(t, suspended(t, ref, func() error { return st.Commit(ctx, ref) }))
	st.Release()
	require.Equal(t, []peerData{want}, seen)
	require.True(t, seen[0].Peer.Is4())
}
