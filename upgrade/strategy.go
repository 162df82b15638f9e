package upgrade

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
)

// ErrCanaryFailed is wrapped by the error of a [Canary] upgrade whose
// canaries were judged unhealthy and moved back.
var ErrCanaryFailed = errors.New("upgrade: canary failed")

// maxRollingPause bounds [RollingPause].
const maxRollingPause = time.Minute

type rolling struct {
	k     int
	pause time.Duration
}

func (s *rolling) String() string { return fmt.Sprintf("rolling(%d)", s.k) }
func (*rolling) strategy()        {}

// A RollingOption configures [Rolling].
type RollingOption func(*rolling)

// RollingPause waits d between batches (bounded by ctx). Default: none;
// d is clamped to [0, 1 minute].
func RollingPause(d time.Duration) RollingOption {
	return func(s *rolling) { s.pause = min(max(d, 0), maxRollingPause) }
}

// Rolling moves the selected machines in batches of k (by ID order): each
// machine is suspended only for its own change, and at most k are
// suspended at any moment; a batch starts when the previous one is done.
// A machine is suspended twice, briefly: once to copy its data, then, after
// its UPGRADE has run on the copy with the machine running, once to swap
// the new version in (see [fsm.Stager]); its pause in the Report is the two
// together.
// Machines may start during the rollout: they start on the old version,
// and are moved at the end, in batches too, under the start lock (held
// only for that), so that none is left behind. If a change fails, the
// machines already moved (which have handled events since) are moved back
// through the downgrade direction on their current data, the current
// version does not change, and the error wraps ErrRolledBack and a
// *[MachineError]. Progress is reported per batch (Phase "batch", with
// Batch of Batches) and per batch moved back (Phase "rolled back").
// k < 1 means 1.
func Rolling(k int, opts ...RollingOption) Strategy {
	s := &rolling{k: max(k, 1)}
	for _, o := range opts {
		o(s)
	}
	return s
}

// roll moves targets batch by batch: each machine is suspended, changed
// and resumed by one worker, so that it waits for its own change only.
// It leaves no target suspended; the caller moves the moved ones back on
// a failure. first numbers the batches after those of an earlier call
// (the stragglers).
func (h *ReleaseHandler) roll(ctx context.Context, r *release, targets []*target, cfg moveConfig, s *rolling, rep *Report, first int) error {
	slices.SortFunc(targets, func(a, b *target) int { return cmp.Compare(a.t.id, b.t.id) })
	var inflight, peak atomic.Int64
	enter := func() {
		n := inflight.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
	}
	defer func() { rep.MaxSuspended = max(rep.MaxSuspended, int(peak.Load())) }()
	var merr error
	done := 0
	batches := (len(targets) + s.k - 1) / s.k
	for i := 0; i < len(targets) && merr == nil; i += s.k {
		if (i > 0 || first > 0) && s.pause > 0 {
			if err := sleepCtx(ctx, s.pause); err != nil {
				merr = err
				break
			}
		}
		batch := targets[i:min(i+s.k, len(targets))]
		merr = h.parallelEach(ctx, batch, func() func(*target) error {
			w := newRollWorker(h)
			return func(tg *target) error { return w.move(ctx, r, cfg, tg, enter, &inflight) }
		})
		done += len(batch)
		n := first + i/s.k + 1
		changed := count(targets[:done], func(tg *target) bool { return tg.changed })
		cfg.reportDetail(Progress{Phase: "batch", Done: changed, Total: len(targets), Batch: n, Batches: first + batches,
			Detail: fmt.Sprintf("batch %d of %d: %d of %d machines moved", n, first+batches, changed, len(targets))})
	}
	return merr
}

// rollSlice is how long a rolling worker runs before it yields its time
// slice, at the next machine: less than the Go scheduler's 10 ms slice,
// after which a goroutine that has not blocked is preempted at any point
// and waits behind every runnable goroutine — mid-change, that wait is the
// machine's pause.
const rollSlice = 2 * time.Millisecond

// A rollWorker suspends, changes and resumes machines one after the
// other on one goroutine of a rolling batch.
type rollWorker struct {
	h     *ReleaseHandler
	st    *fsm.Stager // reused machine after machine
	since time.Time   // when the worker last got a fresh time slice
}

func newRollWorker(h *ReleaseHandler) *rollWorker {
	return &rollWorker{h: h, st: fsm.NewStager()}
}

// fresh yields the worker's time slice if it has run for rollSlice since
// it last yielded, so that a machine is never suspended late in a slice.
func (w *rollWorker) fresh() {
	now := w.h.cfg.now()
	if w.since.IsZero() {
		w.since = now
		return
	}
	if now.Sub(w.since) >= rollSlice {
		w.h.cfg.gosched()
		w.since = w.h.cfg.now()
	}
}

// move changes one machine's code in two short suspensions (see
// [fsm.Stager]): one to copy its data and held events, then, with the
// machine running, UPGRADE on the copy and the new instance made, then
// one to swap it in (or, if the machine handled an event in between, to
// make the whole change). Its pause is the sum of the two.
func (w *rollWorker) move(ctx context.Context, r *release, cfg moveConfig, tg *target, enter func(), inflight *atomic.Int64) error {
	h := w.h
	code := cfg.codeFor(tg)
	if h.cfg.oneWindow {
		return w.moveInOne(ctx, r, tg, code, enter, inflight)
	}
	defer w.st.Release()
	var serr error
	stage, err := w.window(ctx, tg, 0, enter, inflight, func() { serr = w.st.Stage(ctx, tg.ref) })
	if serr != nil {
		err = errors.Join(changed(r, tg, code, serr), err)
	}
	tg.pause = stage // if it goes no further
	if err != nil || tg.gone {
		return err
	}
	// Given up: no UPGRADE to run, and no commit, which an idle machine
	// would take with a done ctx.
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := w.st.Prepare(ctx, code, changeOpts(tg)...); err != nil {
		return changed(r, tg, code, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var cerr error
	commit, err := w.window(ctx, tg, 1, enter, inflight, func() { cerr = changed(r, tg, code, w.st.Commit(ctx, tg.ref)) })
	w.observe(tg, stage, commit)
	return errors.Join(cerr, err)
}

// window suspends tg, runs f and resumes tg, and returns how long tg was
// suspended (from the suspension done to the resumption done) and the
// error of the suspension or of the resumption. A machine that has exited
// is marked gone, and f does not run.
func (w *rollWorker) window(ctx context.Context, tg *target, n int, enter func(), inflight *atomic.Int64, f func()) (time.Duration, error) {
	h := w.h
	w.fresh()
	if err := actor.Suspend(ctx, tg.ref); err != nil {
		if isNoProc(err) {
			tg.gone = true
			return 0, nil
		}
		return 0, err
	}
	enter()
	at := h.cfg.now()
	h.cfg.at(tg.ref, n, false)
	f()
	h.cfg.at(tg.ref, n, true)
	err := actor.Resume(context.WithoutCancel(ctx), tg.ref)
	d := h.cfg.now().Sub(at)
	inflight.Add(-1)
	if err != nil && !isNoProc(err) {
		return d, err
	}
	return d, nil
}

// observe records tg's pause, its two suspensions together, and gives the
// test seam its parts.
func (w *rollWorker) observe(tg *target, stage, commit time.Duration) {
	tg.pause = stage + commit
	if f := w.h.cfg.observePause; f != nil && !tg.gone {
		f(stage, commit)
	}
}

// moveInOne is move in one suspension: the whole change while the machine
// is suspended (the baseline of BenchmarkUpgrade10kRollingOneSuspension).
func (w *rollWorker) moveInOne(ctx context.Context, r *release, tg *target, code fsm.Code, enter func(), inflight *atomic.Int64) error {
	var cerr error
	d, err := w.window(ctx, tg, 0, enter, inflight, func() { cerr = changeTarget(ctx, r, tg, code) })
	w.observe(tg, d, 0)
	return errors.Join(cerr, err)
}

// moveBack moves the changed targets (resumed, so they may have handled
// events since) back from to to their own version through the downgrade
// direction, k at a time.
func (h *ReleaseHandler) moveBack(ctx context.Context, r *release, to string, targets []*target, cfg moveConfig, k int, rep *Report) error {
	var moved []*target
	backs := map[string]step{}
	h.mu.Lock()
	for _, tg := range targets {
		if !tg.changed {
			continue
		}
		moved = append(moved, tg)
		if _, ok := backs[tg.from]; !ok {
			st, err := h.stepLocked(ctx, r, to, tg.from)
			if err != nil {
				h.mu.Unlock()
				return fmt.Errorf("upgrade: move back to %s: %w", tg.from, err)
			}
			backs[tg.from] = st
		}
	}
	h.mu.Unlock()
	var errs []error
	var back atomic.Int64
	for i := 0; i < len(moved); i += k {
		batch := moved[i:min(i+k, len(moved))]
		errs = append(errs, h.parallel(ctx, batch, func(tg *target) error {
			st := backs[tg.from]
			var opts []fsm.ChangeOption
			if st.down {
				opts = append(opts, fsm.AsDowngrade())
			}
			err := fsm.ChangeCode(ctx, tg.ref, st.code, opts...)
			if err == nil || isNoProc(err) {
				tg.changed = false
				back.Add(1)
				return nil
			}
			return fmt.Errorf("upgrade: move %s back to %s: %w", tg.t.id, tg.from, err)
		}))
		cfg.report("rolled back", int(back.Load()), len(moved))
	}
	rep.RolledBack += int(back.Load())
	return errors.Join(errs...)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
