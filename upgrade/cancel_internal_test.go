package upgrade

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
)

// The tests of this file give up on a move (its ctx is cancelled) at each
// point where it waits for a machine, and check what is left: every
// machine resumed, on one version, the one the handler, the Report and
// the journal say; no instance of the new version left open; the caller
// told why.

type (
	holdData struct{ N int }
	hold     struct{} // the handler holds its machine until the rig lets go
	holdGet  struct{}
	holdSet  struct{ N int }
)

// Data the rig's v2 refuses: UPGRADE fails for badUp, the downgrade for
// badDown.
const (
	badUp   = -1
	badDown = 7
)

// A holdRig is the "held" machine in two versions, v1 and v2, with the
// means to make a rollout wait for one machine: hold it in a handler,
// hold it in a system operation (an Inspect), or hold its UPGRADE.
type holdRig struct {
	entered   chan struct{} // a hold handler or a held UPGRADE has begun (buffered)
	letGo     chan struct{} // closed: holds end
	upgrading bool          // v2's UPGRADE waits for letGo
	open      atomic.Int64  // v2 instances made and not closed
	twice     atomic.Int64  // v2 instances closed twice
}

func newHoldRig() *holdRig {
	return &holdRig{entered: make(chan struct{}, 1), letGo: make(chan struct{})}
}

func (g *holdRig) enter() {
	select {
	case g.entered <- struct{}{}:
	default:
	}
}

func (g *holdRig) machine(ver string) *fsm.Machine[holdData] {
	m := fsm.Define("held", ver, "on", holdData{})
	fsm.On(m, "on", func(_ hold, d holdData) fsm.Result[holdData] {
		g.enter()
		<-g.letGo
		return fsm.Keep(d)
	})
	fsm.On(m, "on", func(_ holdGet, d holdData) fsm.Result[holdData] { return fsm.Keep(d, fsm.Reply(d.N)) })
	fsm.On(m, "on", func(e holdSet, d holdData) fsm.Result[holdData] { d.N = e.N; return fsm.Keep(d) })
	if ver == "v2" {
		m.OnUpgrade(func(_, state string, raw msgpack.RawMessage) (string, holdData, error) {
			if g.upgrading {
				g.enter()
				<-g.letGo
			}
			var d holdData
			err := msgpack.Unmarshal(raw, &d)
			if err == nil && d.N == badUp {
				err = errors.New("UPGRADE refuses this machine")
			}
			return state, d, err
		})
		m.OnDowngrade(func(_, state string, d holdData) (string, any, error) {
			if d.N == badDown {
				return "", nil, errors.New("the downgrade refuses this machine")
			}
			return state, d, nil
		})
		m.UpgradesFromVersions("v1")
		m.DowngradesToVersions("v1")
	}
	return m
}

// holdIn holds ref in a system operation (an Inspect, on a goroutine of
// its own) until the rig lets go, and returns once it holds it.
func (g *holdRig) holdIn(ref actor.Ref, wg *sync.WaitGroup) {
	holding := make(chan struct{})
	wg.Go(func() {
		_ = actor.Inspect(context.Background(), ref, func(actor.Behavior) error {
			close(holding)
			<-g.letGo
			return nil
		})
	})
	<-holding
	g.enter()
}

// countCode counts the instances of its Code that are open: those made
// and not yet closed, as a plugin-hosted version's would hold a share of
// its process.
type countCode struct {
	fsm.Code
	g *holdRig
}

type countInstance struct {
	fsm.Instance
	g      *holdRig
	closed atomic.Bool
}

func (i *countInstance) Close() error {
	if i.closed.Swap(true) {
		i.g.twice.Add(1)
	} else {
		i.g.open.Add(-1)
	}
	return nil
}

func (c *countCode) wrap(in fsm.Instance, err error) (fsm.Instance, error) {
	if err != nil {
		return nil, err
	}
	c.g.open.Add(1)
	return &countInstance{Instance: in, g: c.g}, nil
}

func (c *countCode) New(ctx context.Context, id string) (fsm.Instance, error) {
	return c.wrap(c.Code.New(ctx, id))
}

func (c *countCode) Load(ctx context.Context, state string, data []byte) (fsm.Instance, error) {
	return c.wrap(c.Code.Load(ctx, state, data))
}

func (c *countCode) Upgrade(ctx context.Context, from, state string, data []byte) (fsm.Instance, error) {
	return c.wrap(c.Code.Upgrade(ctx, from, state, data))
}

func (c *countCode) Downgrade(ctx context.Context, to string, in fsm.Instance) (string, []byte, error) {
	if ci, ok := in.(*countInstance); ok {
		in = ci.Instance
	}
	return c.Code.Downgrade(ctx, to, in)
}

// A giveUp says where a move is given up: how the first machine (m0) is
// made to wait, and at which point of the move.
type giveUp struct {
	name string
	// how: "busy" (m0 handles a hold event: the suspension waits),
	// "sys" (a system operation holds m0, suspended, at the seam: the
	// change or the resumption waits behind it), "upgrade" (v2's UPGRADE
	// of m0 waits: for Rolling it runs between the two windows, with m0
	// running; for the cut, inside the change that m0's actor took).
	how    string
	window int  // for "sys": the window of the seam
	resume bool // for "sys": before the resumption, not the change
}

func TestMoveGivenUp(t *testing.T) {
	const n = 3
	points := []giveUp{
		{name: "while the suspension waits", how: "busy"},
		{name: "while the first change waits", how: "sys"},
		{name: "during UPGRADE", how: "upgrade"},
		{name: "while the first resumption waits", how: "sys", resume: true},
		{name: "while the commit waits", how: "sys", window: 1},
		{name: "while the commit's resumption waits", how: "sys", window: 1, resume: true},
	}
	for _, strat := range []Strategy{Rolling(1), Rolling(2), AllAtOnce()} {
		for _, workers := range []int{1, 2} {
			for _, p := range points {
				_, isRolling := strat.(*rolling)
				if p.window == 1 && !isRolling {
					continue // the cut has one window
				}
				// The cut resumes its machines once it has committed: given
				// up then, the move is done.
				committed := !isRolling && p.resume
				t.Run(fmt.Sprintf("%v/workers=%d/%s", strat, workers, p.name), func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						testMoveGivenUp(t, strat, workers, p, n, committed)
					})
				})
			}
		}
	}
}

func testMoveGivenUp(t *testing.T, strat Strategy, workers int, p giveUp, n int, committed bool) {
	bg := context.Background()
	g := newHoldRig()
	g.upgrading = p.how == "upgrade"
	var holders sync.WaitGroup
	var m0 actor.Ref
	var once sync.Once
	dir := t.TempDir()
	h, refs := heldRelease(t, g, n, WithWorkers(workers), WithJournal(dir), func(c *releaseConfig) {
		c.atWindow = func(ref actor.Ref, window int, resume bool) {
			if p.how == "sys" && ref == m0 && window == p.window && resume == p.resume {
				once.Do(func() { g.holdIn(ref, &holders) })
			}
		}
	})
	m0 = refs[0]
	if p.how == "busy" {
		require.NoError(t, fsm.Cast(m0, hold{}))
		<-g.entered
	}

	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	done := upgradeAsync(ctx, h, strat)
	if p.how != "busy" {
		<-g.entered
	}
	synctest.Wait() // the move waits for m0
	select {
	case res := <-done:
		t.Fatalf("the move did not wait for m0: %+v, %v", res.rep, res.err)
	default:
	}
	cancel()
	synctest.Wait()
	close(g.letGo)
	res := <-done
	holders.Wait()

	want := "v1"
	if committed {
		want = "v2"
		require.NoError(t, res.err)
		require.Equal(t, "ok", res.rep.Result)
		require.Equal(t, n, res.rep.Changed)
	} else {
		require.ErrorIs(t, res.err, context.Canceled, "the caller is told it gave up")
		require.ErrorIs(t, res.err, ErrRolledBack)
		require.Equal(t, "rolled back", res.rep.Result)
		require.Zero(t, res.rep.Changed)
	}
	answerOn(t, refs, want)
	st := h.Status()
	require.Len(t, st, 1)
	require.Equal(t, want, st[0].Current)
	for _, v := range st[0].Versions {
		if v.Version == want {
			require.Equal(t, n, v.Machines, "the handler tracks every machine on %s", want)
		} else {
			require.Zero(t, v.Machines, "the handler tracks a machine on %s", v.Version)
		}
	}
	require.Equal(t, journalLast(t, dir), map[bool]string{true: "commit", false: "abort"}[committed])
	wantOpen := int64(0)
	if committed {
		wantOpen = int64(n)
	}
	require.Equal(t, wantOpen, g.open.Load(), "v2 instances open: one per machine on v2, no prepared one leaked")
	require.Zero(t, g.twice.Load(), "v2 instances closed twice")
}

// journalLast returns the op of the journal's last record.
// upgradeResult is what an Upgrade returned.
type upgradeResult struct {
	rep Report
	err error
}

// upgradeAsync upgrades the machines "held" to v2 with strat on a
// goroutine, and sends what Upgrade returned.
func upgradeAsync(ctx context.Context, h *ReleaseHandler, strat Strategy) <-chan upgradeResult {
	done := make(chan upgradeResult, 1)
	go func() {
		rep, err := h.Upgrade(ctx, "held", "v2", WithStrategy(strat))
		done <- upgradeResult{rep, err}
	}()
	return done
}

func journalLast(t *testing.T, dir string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, journalFile))
	require.NoError(t, err)
	defer f.Close()
	var last string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		last = sc.Text()
	}
	require.NoError(t, sc.Err())
	var rec struct{ Op string }
	require.NoError(t, json.Unmarshal([]byte(last), &rec))
	return rec.Op
}

// A canary upgrade given up during the window, or while the rest moves,
// moves the canaries back, and the caller is told it gave up.
func TestCanaryGivenUp(t *testing.T) {
	for _, tc := range []struct {
		name  string
		phase string // the progress phase at which the caller gives up
		then  Strategy
		back  int // machines moved back
	}{
		{"during the window", "canaries", AllAtOnce(), 1},
		{"while the rest rolls", "batch", Rolling(1), 2}, // the canary, and the rest's first batch
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const n = 4
				bg := context.Background()
				g := newHoldRig()
				dir := t.TempDir()
				h, refs := heldRelease(t, g, n, WithWorkers(1), WithJournal(dir))
				ctx, cancel := context.WithCancel(bg)
				defer cancel()
				rep, err := h.Upgrade(ctx, "held", "v2", WithStrategy(Canary(CanaryCount(1), CanaryWindow(time.Minute), CanaryThen(tc.then))),
					WithProgress(func(p Progress) {
						if p.Phase == tc.phase {
							cancel()
						}
					}))
				require.ErrorIs(t, err, context.Canceled, "the caller is told it gave up")
				require.Equal(t, "rolled back", rep.Verdict)
				require.Equal(t, "rolled back", rep.Result)
				require.Zero(t, rep.Changed)
				require.Equal(t, tc.back, rep.RolledBack)
				answerOn(t, refs, "v1")
				st := h.Status()
				require.Equal(t, "v1", st[0].Current)
				for _, v := range st[0].Versions {
					if v.Version == "v1" {
						require.Equal(t, n, v.Machines)
					} else {
						require.Zero(t, v.Machines, v.Version)
					}
				}
				require.Equal(t, "commit", journalLast(t, dir), "the canary's move back, a move of some machines")
				require.Zero(t, g.open.Load(), "v2 instances open")
				require.Zero(t, g.twice.Load(), "v2 instances closed twice")
			})
		})
	}
}

// A canary upgrade given up before it starts moves nothing, and says why.
func TestCanaryGivenUpBeforeItStarts(t *testing.T) {
	bg := context.Background()
	h, refs := heldRelease(t, newHoldRig(), 1)
	ref := refs[0]
	ctx, cancel := context.WithCancel(bg)
	cancel()
	rep, err := h.Upgrade(ctx, "held", "v2", WithStrategy(Canary()))
	require.ErrorIs(t, err, context.Canceled, "the caller is told it gave up")
	require.ErrorIs(t, err, ErrCanaryFailed)
	require.Zero(t, rep.Changed)
	inf, err := fsm.Inspect(bg, ref)
	require.NoError(t, err)
	require.Equal(t, "v1", inf.Version)
}

// answerOn requires every machine of refs to answer a call (one left
// suspended would not: in a synctest bubble the minute runs out at once)
// and to run version.
func answerOn(t *testing.T, refs []actor.Ref, version string) {
	t.Helper()
	bg := context.Background()
	for i, ref := range refs {
		cctx, ccancel := context.WithTimeout(bg, time.Minute)
		_, err := fsm.Call(cctx, ref, holdGet{})
		ccancel()
		require.NoError(t, err, "m%d answers: it was resumed", i)
		inf, err := fsm.Inspect(bg, ref)
		require.NoError(t, err)
		require.Equal(t, version, inf.Version, "m%d", i)
	}
}

// heldRelease returns a handler with opts, on a System of its own (both
// closed when the test ends), with the rig's v1 and v2 registered and n
// machines m0, m1, ... started on v1.
func heldRelease(t *testing.T, g *holdRig, n int, opts ...ReleaseOption) (*ReleaseHandler, []actor.Ref) {
	t.Helper()
	bg := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := actor.NewSystem(actor.WithLogger(quiet))
	h, err := NewReleaseHandler(sys, append([]ReleaseOption{WithReleaseLogger(quiet)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, h.Close(bg))
		require.NoError(t, sys.Shutdown(bg))
	})
	require.NoError(t, h.Register(g.machine("v1")))
	require.NoError(t, h.Register(&countCode{Code: g.machine("v2"), g: g}))
	refs := make([]actor.Ref, n)
	for i := range refs {
		refs[i], err = h.Start(bg, "held", fsm.WithID(fmt.Sprintf("m%d", i)))
		require.NoError(t, err)
	}
	return h, refs
}

// A shadow given up while a machine's reload waits for it ends the
// shadow: every machine answers on its own version; the caller is told.
// A shadow that ran closes the shadow instances it drops (a plugin-hosted
// one holds a share of its process): at the end, and when the machine
// stops.
func TestShadowGivenUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 3
		bg := context.Background()
		g := newHoldRig()
		h, refs := heldRelease(t, g, n, WithWorkers(1))
		answer := func() { t.Helper(); answerOn(t, refs, "v1") }

		require.NoError(t, fsm.Cast(refs[0], hold{}))
		<-g.entered
		ctx, cancel := context.WithCancel(bg)
		defer cancel()
		resc := upgradeAsync(ctx, h, Shadow())
		synctest.Wait() // m0's reload waits
		cancel()
		synctest.Wait()
		close(g.letGo)
		res := <-resc
		require.ErrorIs(t, res.err, context.Canceled)
		// The report says what is left: no machine shadowed, the shadow
		// ended (before, Result "refused" beside Changed 2 and no Shadow).
		require.Equal(t, "rolled back", res.rep.Result)
		require.Zero(t, res.rep.Changed, "no machine is shadowed any more")
		require.NotNil(t, res.rep.Shadow, "the ended shadow's report")
		require.False(t, res.rep.Shadow.Active)
		answer()
		require.Zero(t, g.open.Load(), "no shadow instance: the shadow ended")

		_, err := h.Upgrade(bg, "held", "v2", WithStrategy(Shadow()))
		require.NoError(t, err)
		answer() // mirrored: each machine makes its shadow instance
		require.Equal(t, int64(n), g.open.Load(), "a shadow instance per machine")
		_, err = h.EndShadow(bg, "held")
		require.NoError(t, err)
		answer() // not mirrored: each drops its shadow instance
		require.Zero(t, g.open.Load(), "shadow instances open after the shadow ended")

		_, err = h.Upgrade(bg, "held", "v2", WithStrategy(Shadow()))
		require.NoError(t, err)
		answer()
		require.Equal(t, int64(n), g.open.Load())
		for _, ref := range refs {
			require.NoError(t, actor.Stop(bg, ref, actor.Normal))
		}
		require.Zero(t, g.open.Load(), "shadow instances open after their machines stopped")
		require.Zero(t, g.twice.Load(), "v2 instances closed twice")
	})
}

// A shadow given up during its window is ended, and its Report says so:
// Result "rolled back" beside the error, no machine shadowed, the report
// of what it saw until then. Before, Result was "ok" beside ctx's error.
func TestShadowGivenUpInWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 3
		bg := context.Background()
		g := newHoldRig()
		h, refs := heldRelease(t, g, n)
		ctx, cancel := context.WithCancel(bg)
		defer cancel()
		rep, err := h.Upgrade(ctx, "held", "v2", WithStrategy(Shadow(ShadowWindow(time.Minute))),
			WithProgress(func(p Progress) {
				if p.Phase == "shadowed" {
					go func() {
						answerOn(t, refs, "v1") // mirrored
						cancel()
					}()
				}
			}))
		require.ErrorIs(t, err, context.Canceled)
		require.Equal(t, "rolled back", rep.Result)
		require.Zero(t, rep.Changed, "no machine is shadowed any more")
		require.NotNil(t, rep.Shadow)
		require.False(t, rep.Shadow.Active)
		require.Equal(t, int64(n), rep.Shadow.Mirrored, "what it saw before it was given up")
		sr, err := h.ShadowReport("held")
		require.NoError(t, err)
		require.False(t, sr.Active)
		answerOn(t, refs, "v1")
		require.Zero(t, g.open.Load(), "shadow instances open after the shadow ended")
	})
}

// A machine that a failed move could not move back runs the new version:
// the handler tracks it there (so that version stays loaded under it) and
// the Report counts it in Changed. Before, it was tracked on the old
// version, and the new one, neither current nor tracked, was unloaded
// under it.
func TestMoveBackFailedIsTracked(t *testing.T) {
	for _, strat := range []Strategy{Rolling(1), AllAtOnce()} {
		t.Run(strat.String(), func(t *testing.T) {
			bg := context.Background()
			quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
			sys := actor.NewSystem(actor.WithLogger(quiet))
			g := newHoldRig()
			h, err := NewReleaseHandler(sys, WithReleaseLogger(quiet), WithWorkers(1))
			require.NoError(t, err)
			t.Cleanup(func() {
				require.NoError(t, h.Close(bg))
				require.NoError(t, sys.Shutdown(bg))
			})
			require.NoError(t, h.Register(g.machine("v1")))
			var unloaded atomic.Bool
			require.NoError(t, h.RegisterSource("held", "v2", func(context.Context) (fsm.Code, error) {
				return &closingCountCode{countCode{Code: g.machine("v2"), g: g}, &unloaded}, nil
			}))
			refs := make([]actor.Ref, 2)
			for i, n := range []int{badDown, badUp} { // m0 moves, m1 fails, m0 does not move back
				refs[i], err = h.Start(bg, "held", fsm.WithID(fmt.Sprintf("m%d", i)))
				require.NoError(t, err)
				require.NoError(t, fsm.Cast(refs[i], holdSet{n}))
				require.NoError(t, fsm.Sync(bg, refs[i]))
			}
			rep, err := h.Upgrade(bg, "held", "v2", WithStrategy(strat))
			require.ErrorIs(t, err, ErrRolledBack)
			inf, ierr := fsm.Inspect(bg, refs[0])
			require.NoError(t, ierr)
			if inf.Version == "v1" {
				return // the cut reverts exactly: no downgrade to fail
			}
			require.Equal(t, "v2", inf.Version)
			require.Equal(t, 1, rep.Changed, "m0 is on v2")
			require.Equal(t, map[string]int{"v1": 1, "v2": 1}, versionCounts(h))
			require.False(t, unloaded.Load(), "v2 was unloaded under m0")
			_, err = fsm.Call(bg, refs[0], holdGet{})
			require.NoError(t, err)
		})
	}
}

// closingCountCode is a countCode that records that it was unloaded.
type closingCountCode struct {
	countCode
	unloaded *atomic.Bool
}

func (c *closingCountCode) Close() error { c.unloaded.Store(true); return nil }

func versionCounts(h *ReleaseHandler) map[string]int {
	out := map[string]int{}
	for _, v := range h.Status()[0].Versions {
		if v.Machines > 0 {
			out[v.Version] = v.Machines
		}
	}
	return out
}
