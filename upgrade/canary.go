package upgrade

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
)

// DefaultCanaryWindow is how long [Canary] watches its canaries by default.
const DefaultCanaryWindow = 5 * time.Second

type canary struct {
	n       int
	pct     float64
	window  time.Duration
	health  func(context.Context, []actor.Ref) error
	then    Strategy
	isError func(ev fsm.Event, reply any) bool
	maxRate float64 // percent of replies that may be errors
	onPick  func()  // test seam: runs before the canaries are picked
}

func (c *canary) String() string { return "canary(then " + c.then.String() + ")" }
func (*canary) strategy()        {}

// A CanaryOption configures [Canary].
type CanaryOption func(*canary)

// CanaryCount makes the first n selected machines (by ID order) the
// canaries. Default: 1; n < 1 keeps the default.
func CanaryCount(n int) CanaryOption {
	return func(c *canary) {
		if n >= 1 {
			c.n, c.pct = n, 0
		}
	}
}

// CanaryPercent makes p% of the selected machines (rounded up, at least
// one) the canaries. Default: [CanaryCount](1); p outside (0, 100] keeps
// the default.
func CanaryPercent(p float64) CanaryOption {
	return func(c *canary) {
		if p > 0 && p <= 100 {
			c.pct = p
		}
	}
}

// CanaryWindow sets how long the canaries are watched. Default:
// [DefaultCanaryWindow]; d <= 0 keeps the default.
func CanaryWindow(d time.Duration) CanaryOption {
	return func(c *canary) {
		if d > 0 {
			c.window = d
		}
	}
}

// CanaryHealth sets a check run on the canaries at the end of the window:
// an error fails them. Default: none (only exits count).
func CanaryHealth(f func(ctx context.Context, canaries []actor.Ref) error) CanaryOption {
	return func(c *canary) { c.health = f }
}

// CanaryErrorReply sets what counts as an error reply of a canary: f is
// given the event and the value of each reply the canaries' handlers
// give (the error of an [fsm.ReplyError], the value of an [fsm.Reply])
// and reports whether it is an error. Default: a reply whose value
// implements error (so every [fsm.ReplyError], and an [fsm.Reply] of an
// error value). f runs on the canary's goroutine, after each handler: it
// must be quick and must not block. A nil f keeps the default.
func CanaryErrorReply(f func(ev fsm.Event, reply any) bool) CanaryOption {
	return func(c *canary) {
		if f != nil {
			c.isError = f
		}
	}
}

// CanaryMaxErrorRate sets the share of the canaries' replies, in percent,
// that may be error replies ([CanaryErrorReply]) during the window without
// failing them. Default: 0 (any error reply fails them); p is clamped to
// [0, 100].
func CanaryMaxErrorRate(p float64) CanaryOption {
	return func(c *canary) {
		if p == p { // not NaN
			c.maxRate = min(max(p, 0), 100)
		}
	}
}

// CanaryThen sets how the remaining machines move once the canaries pass.
// Default: [AllAtOnce]. A nil or Canary strategy keeps the default.
func CanaryThen(s Strategy) CanaryOption {
	return func(c *canary) {
		if _, nested := s.(*canary); s != nil && !nested {
			c.then = s
		}
	}
}

// Canary moves a few of the selected machines first (the canaries), then
// watches them for a window: a canary that exits other than normally
// (from the moment it is picked; one that had exited before it was
// watched never ran the new version and does not count),
// error replies above [CanaryMaxErrorRate] of the canaries' replies during
// the window (see [CanaryErrorReply]; by default any error reply), or a
// failed health check at the end of the window, fails them. If they
// pass, the remaining selected machines move as [CanaryThen] says and the
// Report's Verdict is "promoted"; if not, the canaries are moved back
// through the downgrade direction, the upgrade fails with an error
// wrapping ErrCanaryFailed, and the Verdict is "rolled back". Reason says
// why either way, in the Report and the log record. A failure to move the
// canaries themselves rolls them back as [AllAtOnce] does. New machines
// may start during the window, on the version current before.
//
// The canaries are picked from every selected machine running when the
// upgrade starts, including those whose start is under way. If none is
// on another version (no machine runs, or the selector picks none), there
// is nothing to watch: the upgrade goes on at once as [CanaryThen] says,
// with Canaries 0, Verdict "promoted" and Reason "no machines to watch
// (...)". It is not refused, as [AllAtOnce] and [Rolling] are not: an
// upgrade of an idle service is legitimate, and its machines then start
// on the new version unwatched; start one first to make the canary a gate.
func Canary(opts ...CanaryOption) Strategy {
	c := &canary{n: 1, window: DefaultCanaryWindow, then: AllAtOnce(), isError: replyIsError}
	for _, o := range opts {
		o(c)
	}
	return c
}

func (c *canary) cohort(n int) int {
	if c.pct > 0 {
		return min(n, max(1, int(math.Ceil(float64(n)*c.pct/100))))
	}
	return min(n, c.n)
}

// canaryMove is move for a Canary strategy, with r.op held.
func (h *ReleaseHandler) canaryMove(ctx context.Context, op string, r *release, to string, cfg moveConfig, c *canary, rep *Report) error {
	type cand struct {
		ref      actor.Ref
		id, from string
	}
	var cands []cand
	if c.onPick != nil {
		c.onPick()
	}
	// The start lock makes the list whole: a machine whose Start or
	// Restore is under way runs before the handler tracks it, so a list
	// taken meanwhile would miss it (and could pick no canary at all while
	// machines run). Machines that start after the list are on the version
	// current before, and move with the rest.
	r.starts.Lock()
	h.mu.Lock()
	for ref, t := range r.live {
		if t.version != to && cfg.selector.picks(t) {
			cands = append(cands, cand{ref, t.id, t.version})
		}
	}
	h.mu.Unlock()
	r.starts.Unlock()
	if len(cands) == 0 {
		return h.canaryNone(ctx, op, r, to, cfg, c, rep)
	}
	slices.SortFunc(cands, func(a, b cand) int { return cmp.Compare(a.id, b.id) })
	cands = cands[:c.cohort(len(cands))]
	only := make(map[actor.Ref]bool, len(cands))
	refs := make([]actor.Ref, 0, len(cands))
	froms := map[string]map[actor.Ref]bool{}
	for _, cd := range cands {
		only[cd.ref] = true
		refs = append(refs, cd.ref)
		if froms[cd.from] == nil {
			froms[cd.from] = map[actor.Ref]bool{}
		}
		froms[cd.from][cd.ref] = true
	}
	rep.Canaries = len(refs)

	// The canaries run the new version tapped, so that their replies are
	// counted during the window; after it the tap counts no more (it
	// stays until their next change of code, at the cost of one atomic
	// load per event).
	ct := &canaryTap{isError: c.isError}
	ct.on.Store(true)
	defer ct.on.Store(false)
	sub := cfg
	sub.strategy, sub.only = AllAtOnce(), only
	sub.wrap = func(tg *target, code fsm.Code) fsm.Code { return &tapCode{Code: code, id: tg.t.id, tap: ct} }
	// The canaries are watched from before their move, so that each exit
	// comes with its reason: see canaryWatch.
	downs, stopWatch, err := h.watchCanaries(ctx, refs)
	if err != nil {
		rep.Verdict, rep.Reason = "rolled back", "cannot watch the canaries: "+err.Error()
		cfg.reportDetail(Progress{Phase: "verdict", Detail: rep.Verdict + ": " + rep.Reason})
		return fmt.Errorf("%w: %s: cannot watch the canaries: %w", ErrCanaryFailed, r.name, err)
	}
	defer stopWatch()
	var crep Report
	err = h.moveHeld(ctx, op, r, to, sub, &crep)
	merge(rep, crep)
	if err != nil && !errors.Is(err, ErrNotJournaled) {
		rep.Verdict, rep.Reason = "rolled back", "moving the canaries failed: "+err.Error()
		cfg.reportDetail(Progress{Phase: "verdict", Detail: rep.Verdict + ": " + rep.Reason})
		return err
	}
	var reason string
	if err != nil {
		// The canaries moved, and the journal does not say so: no window
		// on a rollout that cannot be recorded. They are moved back.
		// The error is the write's, not ErrNotJournaled: once moved back,
		// the canaries' move has not taken effect.
		var nj *notJournaled
		if errors.As(err, &nj) {
			err = nj.err
		}
		reason = "the canaries moved, but their commit could not be journaled: " + err.Error()
		err = fmt.Errorf("%w: %s: the canaries were moved back, their commit not journaled: %w", ErrCanaryFailed, r.name, err)
	} else {
		cfg.report("canaries", crep.Changed, crep.Selected)
		reason = c.judge(ctx, refs, downs, ct)
	}
	// The caller gave up (during the window, or while the rest moved):
	// its error says so, as a move given up does.
	var gaveUp error
	ct.on.Store(false)
	rep.CanaryReplies, rep.CanaryErrors = int(ct.replies.Load()), int(ct.errors.Load())
	if reason == "" {
		rest := cfg
		rest.strategy = c.then
		var rrep Report
		err = h.moveHeld(ctx, op, r, to, rest, &rrep)
		merge(rep, rrep)
		if err == nil || errors.Is(err, ErrNotJournaled) {
			// Not journaled, the rest moved all the same: promoted, and
			// the error says what the journal lacks.
			rep.Verdict, rep.Reason = "promoted", fmt.Sprintf("%d canaries healthy for %v (%d error replies of %d)",
				len(refs), c.window, rep.CanaryErrors, rep.CanaryReplies)
			cfg.reportDetail(Progress{Phase: "verdict", Done: rep.Changed, Total: rep.Selected, Detail: rep.Verdict + ": " + rep.Reason})
			return err
		}
		reason = "moving the rest failed: " + err.Error()
	}
	if err == nil {
		gaveUp = ctx.Err()
	}
	rep.Verdict, rep.Reason = "rolled back", reason
	cfg.reportDetail(Progress{Phase: "verdict", Done: len(refs), Total: rep.Selected, Detail: rep.Verdict + ": " + rep.Reason})
	var errs []error
	for from, set := range froms {
		back := cfg
		back.strategy, back.only, back.progress = AllAtOnce(), set, nil
		var brep Report
		berr := h.moveHeld(context.WithoutCancel(ctx), op, r, from, back, &brep)
		rep.RolledBack += brep.Changed
		errs = append(errs, berr)
	}
	// Changed: the machines left on to. An exited canary is not, even if
	// the handler's watcher has not yet seen it go: ask each machine.
	var left []actor.Ref
	h.mu.Lock()
	for ref, t := range r.live {
		if t.version == to && cfg.selector.picks(t) {
			left = append(left, ref)
		}
	}
	h.mu.Unlock()
	rep.Changed = 0
	for _, ref := range left {
		if actor.Inspect(context.WithoutCancel(ctx), ref, func(actor.Behavior) error { return nil }) == nil {
			rep.Changed++
		}
	}
	rep.Result = "rolled back"
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	if gaveUp != nil {
		return errors.Join(append(errs, fmt.Errorf("%w: %s: %s: %w", ErrCanaryFailed, r.name, reason, gaveUp))...)
	}
	return errors.Join(append(errs, fmt.Errorf("%w: %s: %s", ErrCanaryFailed, r.name, reason))...)
}

// canaryNone is canaryMove when no selected machine runs another version
// than to: with nothing to watch there is nothing to learn from a window,
// so the upgrade is promoted at once (the rest, none, moves as CanaryThen
// says, which makes to current for the whole name) and says so.
func (h *ReleaseHandler) canaryNone(ctx context.Context, op string, r *release, to string, cfg moveConfig, c *canary, rep *Report) error {
	rest := cfg
	rest.strategy = c.then
	var rrep Report
	err := h.moveHeld(ctx, op, r, to, rest, &rrep)
	merge(rep, rrep)
	if err != nil {
		// Refused before it moved anything (an unknown version, no path).
		rep.Verdict, rep.Reason = "rolled back", "no machines to watch, and moving the rest failed: "+err.Error()
		cfg.reportDetail(Progress{Phase: "verdict", Detail: rep.Verdict + ": " + rep.Reason})
		return err
	}
	rep.Verdict, rep.Reason = "promoted", fmt.Sprintf("no machines to watch (%d selected machines, none on another version than %s)", rep.Selected, to)
	cfg.reportDetail(Progress{Phase: "verdict", Done: rep.Changed, Total: rep.Selected, Detail: rep.Verdict + ": " + rep.Reason})
	return nil
}

// watchCanaries monitors the canaries, and returns once every monitor is
// set: the first abnormal exit of a canary arrives on downs from then on.
// stop ends the watch.
func (h *ReleaseHandler) watchCanaries(ctx context.Context, refs []actor.Ref) (downs <-chan actor.Down, stop func(), err error) {
	out := make(chan actor.Down, 1)
	w, err := h.sys.Spawn(&canaryWatch{refs: refs, out: out})
	if err != nil {
		return nil, nil, err
	}
	stop = func() {
		if err := actor.Stop(context.WithoutCancel(ctx), w, actor.Normal); err != nil && !isNoProc(err) {
			h.cfg.logger.Warn("upgrade: stop the canary watcher", "error", err)
		}
	}
	if _, err := actor.Call(ctx, w, startWatch{}); err != nil {
		stop()
		return nil, nil, err
	}
	return out, stop, nil
}

// judge watches the canaries for the window and returns why they failed,
// or "" if they passed.
func (c *canary) judge(ctx context.Context, refs []actor.Ref, downs <-chan actor.Down, ct *canaryTap) string {
	t := time.NewTimer(c.window)
	defer t.Stop()
	select {
	case d := <-downs:
		return fmt.Sprintf("canary %v exited: %v", d.Actor, d.Reason)
	case <-ctx.Done():
		return "cancelled during the window"
	case <-t.C:
	}
	if n, errs := ct.replies.Load(), ct.errors.Load(); errs > 0 && float64(errs)*100 > c.maxRate*float64(n) {
		return fmt.Sprintf("%d error replies of %d (%.1f%%, more than the %g%% allowed); first: %s",
			errs, n, float64(errs)*100/float64(n), c.maxRate, ct.firstError())
	}
	if c.health != nil {
		if err := c.health(ctx, refs); err != nil {
			return "health check failed: " + err.Error()
		}
	}
	return ""
}

// canaryTap counts the canaries' replies and error replies.
type canaryTap struct {
	isError func(fsm.Event, any) bool
	on      atomic.Bool
	replies atomic.Int64
	errors  atomic.Int64

	mu    sync.Mutex
	first string // the first error reply, in words
}

func (*canaryTap) before(*tapInstance, fsm.Event) {}

func (t *canaryTap) handled(ti *tapInstance, ev fsm.Event, _ string, acts []fsm.Action, _ error) {
	if !t.on.Load() {
		return
	}
	for _, a := range acts {
		if k := a.Kind(); k != fsm.ActionReply && k != fsm.ActionReplyError {
			continue
		}
		t.replies.Add(1)
		if t.isError(ev, a.Value()) && t.errors.Add(1) == 1 {
			t.mu.Lock()
			t.first = fmt.Sprintf("%s %q on %s: %v", ti.c.Machine(), ti.c.id, ev.Name(), a.Value())
			t.mu.Unlock()
		}
	}
}

func (t *canaryTap) firstError() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.first
}

// replyIsError is the default of CanaryErrorReply.
func replyIsError(_ fsm.Event, reply any) bool {
	_, ok := reply.(error)
	return ok
}

type startWatch struct{}

// canaryWatch monitors the canaries and reports the first abnormal exit.
// It monitors them before they move (startWatch is a Call, answered once
// every monitor is set), so that a canary that exits, even at once after
// its move, is seen with its own exit reason. A Down of reason
// [actor.ErrNoProc] (that very error, as Monitor gives it) is for a
// machine that had exited before it was watched: before it moved, so not
// on the new version, and not a failure of it; a phone that hung up
// just then is not a failed canary.
type canaryWatch struct {
	refs []actor.Ref
	out  chan<- actor.Down
}

func (w *canaryWatch) Receive(c *actor.Context, msg any) {
	switch m := msg.(type) {
	case startWatch:
		for _, r := range w.refs {
			c.Monitor(r)
		}
		c.Reply(nil)
	case actor.Down:
		if !actor.IsNormal(m.Reason) && m.Reason != actor.ErrNoProc {
			select {
			case w.out <- m:
			default:
			}
		}
	}
}

// merge adds the figures of a part of a move to rep.
func merge(rep *Report, part Report) {
	rep.Policy = part.Policy
	for _, f := range part.From {
		if !slices.Contains(rep.From, f) {
			rep.From = append(rep.From, f)
		}
	}
	slices.Sort(rep.From)
	rep.Selected += part.Selected
	rep.Changed += part.Changed
	rep.Exited += part.Exited
	rep.RolledBack += part.RolledBack
	rep.MaxPause = max(rep.MaxPause, part.MaxPause)
	rep.MaxSuspended = max(rep.MaxSuspended, part.MaxSuspended)
	rep.Result = part.Result
}
