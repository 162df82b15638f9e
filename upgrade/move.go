package upgrade

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
)

// A Strategy says how the selected machines come to run the new version:
// all at once ([AllAtOnce]), in batches ([Rolling]), a few first and the
// rest if they stay healthy ([Canary]), only the machines started from now
// on, at a share ([NewSessions]), or not at all but mirrored to it
// ([Shadow]). See doc/upgrades.md for when to choose which.
type Strategy interface {
	// String names the strategy in logs, reports and the admin API.
	String() string
	strategy()
}

type allAtOnce struct{}

func (allAtOnce) String() string { return "all-at-once" }
func (allAtOnce) strategy()      {}

// AllAtOnce is OTP's consistent cut: every selected machine is suspended,
// then all are changed, then all resume, so that no machine on the old
// version ever talks to one on the new. If one change fails, every machine
// changed is put back exactly as it was (no event was handled meanwhile)
// and the upgrade fails with ErrRolledBack.
func AllAtOnce() Strategy { return allAtOnce{} }

// A Selector picks machines of one name: those with one of IDs (if any)
// and every tag of Tags (if any). The zero Selector picks every machine;
// only an upgrade with it changes the current version.
type Selector struct {
	IDs  []string          `json:"ids,omitempty"`
	Tags map[string]string `json:"tags,omitempty"`
}

func (s Selector) all() bool { return len(s.IDs) == 0 && len(s.Tags) == 0 }

func (s Selector) picks(t *tracked) bool {
	if len(s.IDs) > 0 && !slices.Contains(s.IDs, t.id) {
		return false
	}
	return fsm.Info{Tags: t.tags}.HasTags(s.Tags)
}

// A MoveOption configures an upgrade, a rollback or a dry run.
type MoveOption func(*moveConfig)

type moveConfig struct {
	strategy Strategy
	selector Selector
	who      string
	progress func(Progress)
	only     map[actor.Ref]bool // if non-nil: only these machines (a canary's cohort)
	// wrap, if not nil, gives the code a target moves to in place of
	// its step's (a canary's watch).
	wrap func(tg *target, code fsm.Code) fsm.Code
	// log and machine: where progress is logged (set by move).
	log     *slog.Logger
	machine string
}

// changeTarget changes the code of the suspended tg to code (through the
// downgrade direction if tg's step goes down). A machine that has exited
// meanwhile is marked gone, not failed; a failure is a *MachineError.
func changeTarget(ctx context.Context, r *release, tg *target, code fsm.Code) error {
	return changed(r, tg, code, fsm.ChangeSuspended(ctx, tg.ref, code, changeOpts(tg)...))
}

// changeOpts returns the options of tg's change: the downgrade direction
// if its step goes down.
func changeOpts(tg *target) []fsm.ChangeOption {
	if tg.step.down {
		return []fsm.ChangeOption{fsm.AsDowngrade()}
	}
	return nil
}

// changed records the outcome err of tg's change to code: changed, gone
// (the machine exited meanwhile: not a failure) or a *MachineError.
func changed(r *release, tg *target, code fsm.Code, err error) error {
	switch {
	case err == nil:
		tg.changed = true
		return nil
	case isNoProc(err):
		tg.gone = true
		return nil
	default:
		return &MachineError{Machine: r.name, ID: tg.t.id, Ref: tg.ref.String(), From: tg.from, To: code.Version(), Err: err}
	}
}

// codeFor returns the code tg moves to.
func (c moveConfig) codeFor(tg *target) fsm.Code {
	if c.wrap != nil {
		return c.wrap(tg, tg.step.code)
	}
	return tg.step.code
}

// allMachines reports whether the move concerns every machine of the name,
// the only kind that changes the current version.
func (c moveConfig) allMachines() bool { return c.selector.all() && c.only == nil }

// Progress is how far a move has come, or a decision it took: Phase
// "suspended", "changed", "reverted" or "resumed" (the atomic cut),
// "batch" and "rolled back" ([Rolling]: Batch of Batches), "canaries" and
// "verdict" ([Canary]: Detail has the verdict and its reason), "share"
// ([NewSessions]), "shadowed" and "shadow" ([Shadow]: Shadow has the
// counts and samples), with Done of Total machines.
type Progress struct {
	Phase string `json:"phase"`
	Done  int    `json:"done"`
	Total int    `json:"total"`
	// Batch and Batches: the batch just done, of how many ([Rolling]).
	Batch   int `json:"batch,omitempty"`
	Batches int `json:"batches,omitempty"`
	// Share is the share of new machines on the new version ([NewSessions]).
	Share float64 `json:"share,omitempty"`
	// Detail says in words what was decided or done.
	Detail string `json:"detail,omitempty"`
	// Shadow is the shadow's report so far ([Shadow]).
	Shadow *ShadowReport `json:"shadow,omitempty"`
}

// WithProgress calls f after each phase of the move, on the caller's
// goroutine. Default: none.
func WithProgress(f func(Progress)) MoveOption {
	return func(c *moveConfig) { c.progress = f }
}

func (c moveConfig) report(phase string, done, total int) {
	c.reportDetail(Progress{Phase: phase, Done: done, Total: total})
}

// reportDetail hands p to the progress callback and logs it (at Debug for
// the phases of the cut, at Info for a strategy's steps and decisions).
func (c moveConfig) reportDetail(p Progress) {
	if c.log != nil {
		level := slog.LevelInfo
		switch p.Phase {
		case "suspended", "changed", "resumed":
			level = slog.LevelDebug
		}
		if c.log.Enabled(context.Background(), level) {
			attrs := []any{"machine", c.machine, "phase", p.Phase, "done", p.Done, "total", p.Total}
			if p.Batches > 0 {
				attrs = append(attrs, "batch", p.Batch, "batches", p.Batches)
			}
			if p.Phase == "share" {
				attrs = append(attrs, "share", p.Share)
			}
			if p.Detail != "" {
				attrs = append(attrs, "detail", p.Detail)
			}
			if sh := p.Shadow; sh != nil {
				attrs = append(attrs, "mirrored", sh.Mirrored, "diverged", sh.Diverged, "failed", sh.Failed, "samples", sh.Samples)
			}
			c.log.Log(context.Background(), level, "upgrade: progress", attrs...)
		}
	}
	if c.progress != nil {
		c.progress(p)
	}
}

// WithStrategy sets the strategy. Default: [AllAtOnce].
func WithStrategy(s Strategy) MoveOption {
	return func(c *moveConfig) {
		if s != nil {
			c.strategy = s
		}
	}
}

// WithSelector picks the machines to move. Default: the zero [Selector],
// every machine of the name.
func WithSelector(s Selector) MoveOption {
	return func(c *moveConfig) { c.selector = s }
}

// By names who asked, for the log and the report. Default: "api".
func By(who string) MoveOption {
	return func(c *moveConfig) {
		if who != "" {
			c.who = who
		}
	}
}

func newMoveConfig(opts []MoveOption) moveConfig {
	c := moveConfig{strategy: AllAtOnce(), who: "api"}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// A Report is the outcome and the figures of an upgrade or a rollback.
type Report struct {
	Op       string        `json:"op"` // "upgrade" or "rollback"
	Who      string        `json:"who"`
	Machine  string        `json:"machine"`
	From     []string      `json:"from"` // versions the selected machines ran
	To       string        `json:"to"`
	Strategy string        `json:"strategy"`
	Policy   string        `json:"policy"`
	Selected int           `json:"selected"` // machines selected
	Changed  int           `json:"changed"`  // machines now on To (0 if rolled back, but for those that could not be moved back)
	Exited   int           `json:"exited"`   // selected machines that exited meanwhile
	MaxPause time.Duration `json:"max_pause_ns"`
	Total    time.Duration `json:"total_ns"`
	Result   string        `json:"result"` // "ok", "rolled back", "refused", "failed"
	Error    string        `json:"error,omitempty"`

	// RolledBack is how many machines [Rolling] or [Canary] moved and
	// then moved back through the downgrade direction.
	RolledBack int `json:"rolled_back,omitempty"`
	// MaxSuspended is the most machines suspended at one moment.
	MaxSuspended int `json:"max_suspended,omitempty"`
	// Canaries, Verdict and Reason: see [Canary]. Verdict is "promoted"
	// or "rolled back".
	Canaries int    `json:"canaries,omitempty"`
	Verdict  string `json:"verdict,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// CanaryReplies and CanaryErrors: the replies the canaries gave
	// during the window, and how many of them were error replies
	// ([CanaryErrorReply]).
	CanaryReplies int `json:"canary_replies,omitempty"`
	CanaryErrors  int `json:"canary_errors,omitempty"`
	// Share is the share of new machines that start on To
	// ([NewSessions]).
	Share *float64 `json:"share,omitempty"`
	// Shadow is the shadow's report when the move ended it ([Shadow]
	// with [ShadowWindow]).
	Shadow *ShadowReport `json:"shadow,omitempty"`
}

// Upgrade moves the machines of machine selected by the options (default:
// all, [AllAtOnce]) to version to, as the machine's policy says ([Policy]),
// and with the zero selector makes to the current version (not yet the
// permanent one: see [ReleaseHandler.Confirm]). The machines keep serving
// except for their own suspension.
//
// Before anything changes it checks that a chain of UPGRADE handlers leads
// from every version the machines run to to, and one of downgrades back
// (ErrNoPath). ErrBusy while another upgrade of machine runs, and
// ErrHandingOff while a binary restart hands the machines over. If a change
// fails, every machine is back as before and the error wraps
// ErrRolledBack and a *[MachineError]. The Report has the figures either
// way.
func (h *ReleaseHandler) Upgrade(ctx context.Context, machine, to string, opts ...MoveOption) (Report, error) {
	return h.move(ctx, "upgrade", machine, to, newMoveConfig(opts))
}

// Rollback moves every machine of machine on the current version back to
// the version that was current before the last upgrade, through the
// downgrade handlers applied to their data as it is now, and makes that
// version current again; if the version rolled back from had been
// confirmed, the one rolled back to becomes permanent as well, so that a
// restarted host does not come back on it. During a new-sessions rollout
// ([NewSessions]) that has not made its version current, the rollout is
// the last change, and Rollback undoes it instead: it ends the share and
// moves the machines started on the new version back to the current one.
// ErrNothingToRollBack if there was no upgrade.
func (h *ReleaseHandler) Rollback(ctx context.Context, machine string, opts ...MoveOption) (Report, error) {
	r, err := h.lookup(machine)
	if err != nil {
		return Report{}, err
	}
	if !r.op.TryLock() {
		return Report{Op: "rollback", Machine: machine, Result: "refused"}, r.op.busy(machine)
	}
	r.op.Unlock()
	h.mu.Lock()
	to := r.rollbackTargetLocked()
	h.mu.Unlock()
	if to == "" {
		return Report{Op: "rollback", Machine: machine, Result: "refused"}, fmt.Errorf("%w: %s", ErrNothingToRollBack, machine)
	}
	return h.move(ctx, "rollback", machine, to, newMoveConfig(opts))
}

// Confirm makes the current version of machine permanent: a restarted
// host comes back on it, and the version it replaces is unloaded once no
// machine runs it.
func (h *ReleaseHandler) Confirm(ctx context.Context, machine string) error {
	r, err := h.lookup(machine)
	if err != nil {
		return err
	}
	if !r.op.TryLock() {
		return r.op.busy(machine)
	}
	defer r.op.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	cur := r.currentLocked()
	if h.journal != nil {
		if err := h.journal.append(record{Op: recConfirm, Machine: machine, To: cur}); err != nil {
			return err
		}
	}
	r.permanent = cur
	h.unloadIdleLocked(r)
	h.cfg.logger.Info("upgrade: confirmed", "machine", machine, "permanent", cur)
	return nil
}

// target is one machine to move.
type target struct {
	ref       actor.Ref
	t         *tracked
	from      string
	step      step
	suspended bool
	changed   bool
	gone      bool
	pausedAt  time.Time
	pause     time.Duration
}

func (h *ReleaseHandler) move(ctx context.Context, op, machine, to string, cfg moveConfig) (rep Report, err error) {
	start := h.cfg.now()
	rep = Report{Op: op, Who: cfg.who, Machine: machine, To: to, Strategy: cfg.strategy.String(), Result: "refused"}
	defer func() {
		rep.Total = h.cfg.now().Sub(start)
		if err != nil {
			rep.Error = err.Error()
		}
		h.finish(op, rep)
	}()
	r, err := h.lookup(machine)
	if err != nil {
		return rep, err
	}
	if !r.op.TryLock() {
		return rep, r.op.busy(machine)
	}
	defer r.op.Unlock()
	h.mu.Lock()
	r.moving++
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		r.moving--
		h.unloadIdleLocked(r)
		h.mu.Unlock()
	}()
	cfg.log, cfg.machine = h.cfg.logger, machine
	switch s := cfg.strategy.(type) {
	case *canary:
		err = h.canaryMove(ctx, op, r, to, cfg, s, &rep)
	case *newSessions:
		err = h.sessionsMove(ctx, op, r, to, cfg, s, &rep)
	case *shadow:
		err = h.shadowMove(ctx, op, r, to, cfg, s, &rep)
	default:
		err = h.moveHeld(ctx, op, r, to, cfg, &rep)
	}
	return rep, err
}

// moveHeld is move with r.op held: it fills rep but for Total and Error.
func (h *ReleaseHandler) moveHeld(ctx context.Context, op string, r *release, to string, cfg moveConfig, rep *Report) (err error) {
	rep.Result = "refused"
	// The cut: no machine starts from here to the commit.
	r.starts.Lock()
	locked := true
	defer func() {
		if locked {
			r.starts.Unlock()
		}
	}()

	machine := r.name
	h.mu.Lock()
	rep.Policy = r.policy.String()
	policy := r.policy
	prevCurrent := r.currentLocked()
	if _, ok := r.versions[to]; !ok {
		h.mu.Unlock()
		return fmt.Errorf("%w: %s %s", ErrUnknownVersion, machine, to)
	}
	if _, err := r.versions[to].load(ctx); err != nil {
		h.mu.Unlock()
		return err
	}
	var targets []*target
	froms := map[string]bool{}
	// One allocation for every target, not one each.
	slab := make([]target, 0, len(r.live))
	for ref, t := range r.live {
		if t.version == to || !cfg.selector.picks(t) || (cfg.only != nil && !cfg.only[ref]) {
			continue
		}
		slab = append(slab, target{ref: ref, t: t, from: t.version})
		froms[t.version] = true
	}
	targets = make([]*target, len(slab))
	for i := range slab {
		targets[i] = &slab[i]
	}
	if op == "upgrade" && cfg.allMachines() {
		froms[prevCurrent] = froms[prevCurrent] || prevCurrent != to
	}
	// Pre-flight: a path there and back from every version concerned.
	steps := map[string]step{}
	for from, need := range froms {
		if !need || from == to {
			continue
		}
		s, err := h.stepLocked(ctx, r, from, to)
		if err == nil {
			_, err = h.planLocked(ctx, r, to, from)
		}
		if err != nil {
			h.mu.Unlock()
			return err
		}
		steps[from] = s
	}
	for _, tg := range targets {
		tg.step = steps[tg.from]
	}
	rep.From = sortedKeys(froms)
	rep.Selected = len(targets)
	// The journal's kind and from: a rollback of every machine to the
	// current version ends a new-sessions rollout (journal.go).
	kind, from := op, prevCurrent
	if s := r.sessions; s != nil && op == kindRollback && to == prevCurrent && cfg.allMachines() {
		kind, from = kindEndSessions, s.to
	}
	h.mu.Unlock()

	if h.journal != nil {
		if err := h.journal.append(record{Op: recBegin, Machine: machine, From: from, To: to, Kind: kind, Some: !cfg.allMachines()}); err != nil {
			return err
		}
	}
	if policy == PolicyMigrate {
		if rs, ok := cfg.strategy.(*rolling); ok {
			// Machines may start during the rollout (on the old version):
			// the start lock is held again only to move those at the end.
			r.starts.Unlock()
			locked = false
			err = h.roll(ctx, r, targets, cfg, rs, rep, 0)
			r.starts.Lock()
			locked = true
			if err == nil {
				var more []*target
				more, err = h.stragglers(ctx, r, to, targets, cfg, steps)
				if err == nil && len(more) > 0 {
					rep.Selected += len(more)
					err = h.roll(ctx, r, more, cfg, rs, rep, (len(targets)+rs.k-1)/rs.k)
				}
				targets = append(targets, more...)
			}
			if err != nil {
				rerr := h.moveBack(context.WithoutCancel(ctx), r, to, targets, cfg, rs.k, rep)
				err = errors.Join(fmt.Errorf("%w: %w", ErrRolledBack, err), rerr)
			}
			rep.MaxPause = 0
			for _, tg := range targets {
				rep.MaxPause = max(rep.MaxPause, tg.pause)
			}
		} else {
			err = h.cut(ctx, r, targets, cfg)
			rep.MaxSuspended = count(targets, func(tg *target) bool { return tg.suspended })
		}
	}
	// Commit (or not) the versions, under the cut.
	h.mu.Lock()
	for _, tg := range targets {
		if tg.gone {
			rep.Exited++
		}
	}
	if policy == PolicyMigrate {
		// A machine still changed when the move failed is one that could
		// not be moved back (the error says why): it runs to, and is
		// tracked there, so that to stays loaded under it.
		for _, tg := range targets {
			if tg.changed {
				if r.live[tg.ref] != tg.t {
					continue // it exited meanwhile, and was counted out
				}
				r.versions[tg.from].refs--
				r.versions[to].refs++
				tg.t.version = to
				rep.Changed++
			}
		}
	}
	if err == nil {
		if cfg.allMachines() {
			r.sessions = nil // a move of every machine ends a new-sessions rollout
		}
		if cfg.allMachines() && prevCurrent != to {
			if op == "rollback" {
				r.history = r.history[:len(r.history)-1]
				if r.permanent == prevCurrent {
					r.permanent = to
				}
			} else {
				r.history = append(r.history, prevCurrent)
			}
			r.current = to
		}
		rep.Result = "ok"
	} else {
		rep.Result = "rolled back"
	}
	h.unloadIdleLocked(r)
	current, permanent := r.currentLocked(), r.permanent
	h.mu.Unlock()
	if h.journal != nil {
		rec := record{Op: recCommit, Machine: machine, From: from, To: to, Current: current, Permanent: permanent}
		if err != nil {
			rec.Op = recAbort
		}
		if jerr := h.journal.append(rec); jerr != nil && err == nil {
			err = &notJournaled{what: fmt.Sprintf("%s of %s to %s", op, machine, to), err: jerr}
		} else if jerr != nil {
			err = errors.Join(err, jerr)
		}
	}
	r.starts.Unlock()
	locked = false

	if _, ok := cfg.strategy.(*rolling); !ok || policy != PolicyMigrate {
		rep.MaxPause = h.resumeAll(ctx, targets)
		cfg.report("resumed", count(targets, func(tg *target) bool { return tg.suspended }), len(targets))
	}
	// A commit not journaled has taken effect (ErrNotJournaled): its
	// machines are restarted all the same.
	if (err == nil || errors.Is(err, ErrNotJournaled)) && policy == PolicyRestart {
		h.restartAll(ctx, targets)
		rep.Changed = len(targets)
	}
	return err
}

// stragglers returns the machines selected for a rolling move that are
// not among targets: those started during the rollout. Called with the
// start lock held.
func (h *ReleaseHandler) stragglers(ctx context.Context, r *release, to string, targets []*target, cfg moveConfig, steps map[string]step) ([]*target, error) {
	seen := make(map[actor.Ref]bool, len(targets))
	for _, tg := range targets {
		seen[tg.ref] = true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var more []*target
	for ref, t := range r.live {
		if seen[ref] || t.version == to || !cfg.selector.picks(t) || (cfg.only != nil && !cfg.only[ref]) {
			continue
		}
		st, ok := steps[t.version]
		if !ok {
			var err error
			if st, err = h.stepLocked(ctx, r, t.version, to); err != nil {
				return nil, err
			}
			steps[t.version] = st
		}
		more = append(more, &target{ref: ref, t: t, from: t.version, step: st})
	}
	return more, nil
}

// cut suspends every target, changes them all, and on a failure reverts
// those changed. It leaves them suspended.
func (h *ReleaseHandler) cut(ctx context.Context, r *release, targets []*target, cfg moveConfig) error {
	// Each worker suspends a machine and changes it at once: a changed
	// machine stays suspended until every machine is changed, so no
	// barrier is needed between the two (a machine suspended later may
	// still send to one changed earlier, as it may to one suspended
	// earlier in a two-barrier cut: the message waits in the mailbox).
	var failed atomic.Bool
	cerr := h.parallel(ctx, targets, func(tg *target) error {
		if failed.Load() {
			return nil // nothing more to change: leave it running
		}
		err := actor.Suspend(ctx, tg.ref)
		switch {
		case err == nil:
			tg.suspended = true
			tg.pausedAt = h.cfg.now()
			h.cfg.at(tg.ref, 0, false)
		case isNoProc(err):
			tg.gone = true
			return nil
		default:
			failed.Store(true)
			return err
		}
		if err := changeTarget(ctx, r, tg, cfg.codeFor(tg)); err != nil {
			failed.Store(true)
			return err
		}
		return nil
	})
	cfg.report("suspended", count(targets, func(tg *target) bool { return tg.suspended }), len(targets))
	cfg.report("changed", count(targets, func(tg *target) bool { return tg.changed }), len(targets))
	if cerr == nil {
		return nil
	}
	rerr := h.parallel(context.WithoutCancel(ctx), targets, func(tg *target) error {
		if !tg.changed {
			return nil
		}
		err := fsm.Revert(context.WithoutCancel(ctx), tg.ref)
		if err == nil || isNoProc(err) {
			tg.changed = false
			return nil
		}
		return fmt.Errorf("upgrade: revert %v: %w", tg.ref, err)
	})
	cfg.report("reverted", count(targets, func(tg *target) bool { return tg.suspended }), len(targets))
	return errors.Join(fmt.Errorf("%w: %w", ErrRolledBack, cerr), rerr)
}

// resumeAll resumes every suspended target and returns the longest pause.
func (h *ReleaseHandler) resumeAll(ctx context.Context, targets []*target) time.Duration {
	_ = h.parallel(context.WithoutCancel(ctx), targets, func(tg *target) error {
		if !tg.suspended {
			return nil
		}
		h.cfg.at(tg.ref, 0, true)
		if err := actor.Resume(context.WithoutCancel(ctx), tg.ref); err != nil && !isNoProc(err) {
			h.cfg.logger.Error("upgrade: resume", "actor", tg.ref, "error", err)
		}
		tg.pause = h.cfg.now().Sub(tg.pausedAt)
		return nil
	})
	var maxPause time.Duration
	for _, tg := range targets {
		maxPause = max(maxPause, tg.pause)
	}
	return maxPause
}

// restartAll stops every target with ErrRestarted, without waiting.
func (h *ReleaseHandler) restartAll(ctx context.Context, targets []*target) {
	done, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cancel()
	for _, tg := range targets {
		// With a done ctx, Stop asks and returns at once.
		if err := actor.Stop(done, tg.ref, ErrRestarted); err != nil && !isNoProc(err) && !errors.Is(err, context.Canceled) {
			h.cfg.logger.Warn("upgrade: restart a machine", "actor", tg.ref, "error", err)
		}
	}
}

// parallel runs f on every target over the handler's workers and returns
// the first error (by target order). f may set fields of its own target.
func (h *ReleaseHandler) parallel(ctx context.Context, targets []*target, f func(*target) error) error {
	return h.parallelEach(ctx, targets, func() func(*target) error { return f })
}

// parallelEach is parallel with a function of each worker's own, made by
// mk on that worker's goroutine: a worker may keep state in it. Once ctx
// ends, no worker starts on another target, and parallelEach returns
// ctx's error if no target failed: a move given up stops at the next
// machine, whatever the number of workers, and even though a suspension
// or a change of an idle machine is carried out with a done ctx (see
// actor.Suspend).
func (h *ReleaseHandler) parallelEach(ctx context.Context, targets []*target, mk func() func(*target) error) error {
	n := min(h.cfg.workers, len(targets))
	if n <= 1 {
		f := mk()
		for _, tg := range targets {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := f(tg); err != nil {
				return err
			}
		}
		return ctx.Err()
	}
	errs := make([]error, len(targets))
	var next atomic.Int64
	var wg sync.WaitGroup
	// Chunks of up to 32, smaller when there are few targets (a rolling
	// batch), so that every worker gets some.
	chunk := int64(min(32, (len(targets)+n-1)/n))
	for range n {
		wg.Go(func() {
			f := mk()
			for {
				i := int(next.Add(chunk) - chunk)
				if i >= len(targets) {
					return
				}
				for j := i; j < min(i+int(chunk), len(targets)) && ctx.Err() == nil; j++ {
					errs[j] = f(targets[j])
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}

// finish logs the report, counts it and keeps it as the last one.
func (h *ReleaseHandler) finish(op string, rep Report) {
	h.mu.Lock()
	if r := h.machines[rep.Machine]; r != nil {
		l := rep
		r.last = &l
	}
	h.mu.Unlock()
	level := slogLevel(rep.Result)
	var extra []any
	if rep.Share != nil {
		extra = append(extra, "share", *rep.Share)
	}
	if sh := rep.Shadow; sh != nil {
		extra = append(extra, "mirrored", sh.Mirrored, "diverged", sh.Diverged, "failed", sh.Failed, "samples", sh.Samples)
	}
	h.cfg.logger.Log(context.Background(), level, "upgrade: "+op, append([]any{"who", rep.Who, "machine", rep.Machine, "from", rep.From, "to", rep.To,
		"strategy", rep.Strategy, "policy", rep.Policy, "result", rep.Result,
		"machines", rep.Selected, "changed", rep.Changed, "exited", rep.Exited,
		"max_pause", rep.MaxPause, "total", rep.Total, "error", rep.Error,
		"rolled_back", rep.RolledBack, "verdict", rep.Verdict, "reason", rep.Reason,
		"canary_replies", rep.CanaryReplies, "canary_errors", rep.CanaryErrors}, extra...)...)
	if m := h.cfg.metrics; m != nil {
		labels := []string{"machine", rep.Machine, "op", op, "result", rep.Result}
		m.Add("hotline_upgrades_total", labels, 1)
		m.Add("hotline_upgrade_machines_changed_total", []string{"machine", rep.Machine}, float64(rep.Changed))
		m.Set("hotline_upgrade_last_max_pause_seconds", []string{"machine", rep.Machine}, rep.MaxPause.Seconds())
		m.Set("hotline_upgrade_last_duration_seconds", []string{"machine", rep.Machine}, rep.Total.Seconds())
		for _, st := range h.Status() {
			for _, v := range st.Versions {
				m.Set("hotline_machines", []string{"machine", st.Machine, "version", v.Version}, float64(v.Machines))
			}
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k, ok := range m {
		if ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func count(targets []*target, f func(*target) bool) int {
	n := 0
	for _, tg := range targets {
		if f(tg) {
			n++
		}
	}
	return n
}

// notJournaled is the error of a move that took effect and whose commit
// could not be written: [ErrNotJournaled], with the write's error.
type notJournaled struct {
	what string // "upgrade of phone to v2"
	err  error  // the write's, wrapping ErrBadJournal
}

func (e *notJournaled) Error() string {
	return ErrNotJournaled.Error() + ": " + e.what + ": " + e.err.Error()
}

func (e *notJournaled) Unwrap() []error { return []error{ErrNotJournaled, e.err} }
