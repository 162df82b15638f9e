package upgrade

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
)

// TestRollingRunsUpgradeWithTheMachineRunning: a rolling worker runs each
// machine's UPGRADE on a copy of its data while the machine runs, and
// suspends it only to copy the data and to swap the new version in; in
// one suspension (the baseline the seam keeps) or all at once, UPGRADE
// runs with the machine suspended. Each UPGRADE pokes its machine (an
// event) and sees whether the machine handled it: it does only if it is
// not suspended. The poke is an event handled between the two
// suspensions, so the second one makes the whole change again, on the
// data as it is then: the result is the same. The pause reported is the
// two suspensions together.
func TestRollingRunsUpgradeWithTheMachineRunning(t *testing.T) {
	const n = 12
	for _, tc := range []struct {
		name      string
		strategy  Strategy
		oneWindow bool
		running   bool // the first UPGRADE of a machine runs with it running
	}{
		{"rolling", Rolling(4), false, true},
		{"rolling in one suspension", Rolling(4), true, false},
		{"all at once", AllAtOnce(), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
				sys := actor.NewSystem(actor.WithLogger(quiet))
				var stage, commit []time.Duration
				var mu sync.Mutex
				// Every reading of the clock is a millisecond after the last,
				// and one worker reads it: a suspension lasts 1 ms.
				clock := &stepClock{now: time.Unix(0, 0), step: time.Millisecond}
				h, err := NewReleaseHandler(sys, WithReleaseLogger(quiet), WithWorkers(1), func(c *releaseConfig) {
					c.now, c.gosched = clock.read, clock.yield
					c.oneWindow = tc.oneWindow
					c.observePause = func(s, c time.Duration) {
						mu.Lock()
						defer mu.Unlock()
						stage, commit = append(stage, s), append(commit, c)
					}
				})
				require.NoError(t, err)
				t.Cleanup(func() {
					require.NoError(t, h.Close(ctx))
					require.NoError(t, sys.Shutdown(ctx))
				})
				w := &poker{refs: map[string]actor.Ref{}, poked: map[string]bool{}, running: map[string][]bool{}}
				require.NoError(t, h.Register(pokedCode("v1", w)))
				require.NoError(t, h.Register(pokedCode("v2", w)))
				for i := range n {
					id := fmt.Sprintf("m%02d", i)
					ref, err := h.Start(ctx, "poked", fsm.WithID(id))
					require.NoError(t, err)
					w.mu.Lock()
					w.refs[id] = ref
					w.mu.Unlock()
				}
				rep, err := h.Upgrade(ctx, "poked", "v2", WithStrategy(tc.strategy))
				require.NoError(t, err)
				require.Equal(t, n, rep.Changed)
				w.mu.Lock()
				running, refs := maps.Clone(w.running), maps.Clone(w.refs)
				w.mu.Unlock()
				require.Len(t, running, n)
				for id, runs := range running {
					require.Equal(t, []bool{tc.running}, runs, "%s running during its UPGRADE", id)
				}
				for id, ref := range refs {
					require.NoError(t, fsm.Sync(ctx, ref))
					inf, err := fsm.Inspect(ctx, ref)
					require.NoError(t, err)
					require.Equal(t, "v2", inf.Version)
					var d poked
					require.NoError(t, msgpack.Unmarshal(inf.Data, &d))
					require.Equal(t, poked{ID: id, Gen: 2, Pokes: 1}, d, "the poke handled by v1 before the change, or queued and handled by v2 after it")
				}
				if _, isRolling := tc.strategy.(*rolling); !isRolling {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				require.Len(t, stage, n)
				want := 2 * time.Millisecond
				if tc.oneWindow {
					want = time.Millisecond
				}
				for i := range stage {
					require.Equal(t, want, stage[i]+commit[i], "machine %d: a suspension lasts one reading of the clock", i)
				}
				require.Equal(t, want, rep.MaxPause, "the pause is the two suspensions together")
			})
		})
	}
}

// A poker tells an UPGRADE whether its machine is running.
type poker struct {
	mu      sync.Mutex
	refs    map[string]actor.Ref
	poked   map[string]bool
	running map[string][]bool // by machine, for each UPGRADE run
}

type (
	poked struct {
		ID    string
		Gen   int
		Pokes int
	}
	poke struct{}
)

// check pokes the machine id and records whether it handled the poke once
// every other goroutine is blocked.
func (w *poker) check(id string) {
	w.mu.Lock()
	ref := w.refs[id]
	w.poked[id] = false
	w.mu.Unlock()
	if err := fsm.Cast(ref, poke{}); err != nil {
		panic(err)
	}
	synctest.Wait()
	w.mu.Lock()
	w.running[id] = append(w.running[id], w.poked[id])
	w.mu.Unlock()
}

// pokedCode is a machine whose data is its ID, the generation of its code
// and how many pokes it has handled; its UPGRADE runs check. A poke counts
// once, whichever version handles it.
func pokedCode(version string, w *poker) *fsm.Machine[poked] {
	gen := map[string]int{"v1": 1, "v2": 2}[version]
	m := fsm.Define("poked", version, "on", poked{})
	m.InitFunc(func(id string) (string, poked) { return "on", poked{ID: id, Gen: gen} })
	fsm.OnAny(m, func(_ poke, d poked) fsm.Result[poked] {
		w.mu.Lock()
		w.poked[d.ID] = true
		w.mu.Unlock()
		d.Pokes++
		return fsm.Keep(d)
	})
	m.OnUpgrade(func(from, state string, raw msgpack.RawMessage) (string, poked, error) {
		var d poked
		if err := msgpack.Unmarshal(raw, &d); err != nil {
			return "", d, err
		}
		if d.Pokes == 0 {
			w.check(d.ID)
		}
		d.Gen = gen
		return state, d, nil
	})
	return m
}
