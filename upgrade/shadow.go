package upgrade

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/internal/msgpackcheck"
)

// DefaultShadowSamples is how many divergences a [Shadow] keeps by default.
const DefaultShadowSamples = 16

type shadow struct {
	events  []string // nil: all
	samples int
	window  time.Duration
}

func (s *shadow) String() string { return "shadow" }
func (*shadow) strategy()        {}

// A ShadowOption configures [Shadow].
type ShadowOption func(*shadow)

// ShadowEvents mirrors only the events of these names ([fsm.EventName]).
// Default: every event.
func ShadowEvents(names ...string) ShadowOption {
	return func(s *shadow) {
		if len(names) > 0 {
			s.events = slices.Clone(names)
		}
	}
}

// ShadowSamples keeps at most n divergences as samples (the first n).
// Default: [DefaultShadowSamples]; n < 0 keeps the default, 0 keeps none
// (they are still counted).
func ShadowSamples(n int) ShadowOption {
	return func(s *shadow) {
		if n >= 0 {
			s.samples = n
		}
	}
}

// ShadowWindow makes the upgrade run the shadow for d, sending a progress
// line with the counts so far every tenth of d, then end it and return its
// report in [Report].Shadow. Default: 0, the upgrade returns once the
// machines are shadowed and the shadow runs until
// [ReleaseHandler.EndShadow] or the next upgrade of the machine name.
//
// An upgrade given up (its ctx ends) during the window, or while the
// machines are reloaded, ends the shadow: it returns ctx's error and a
// Report whose Result is "rolled back", Changed 0 (no machine is shadowed
// any more) and Shadow what the shadow saw until then. So does a reload
// that fails.
func ShadowWindow(d time.Duration) ShadowOption {
	return func(s *shadow) { s.window = max(d, 0) }
}

// Shadow is a dark launch: no machine moves. Each selected machine goes
// on running its version (the live one), and each event it handles (of
// the [ShadowEvents], default all) is also handled by an instance of the
// new version made from a copy of the machine's data (its UPGRADE run on
// the live data, as an upgrade would). The next state, the replies and
// whether the handler failed are compared, and the shadow's results are
// thrown away: its replies, inserted events, timeouts and stops reach
// nobody. A divergence is counted (per event name) and sampled (the first
// [ShadowSamples]), and the shadow instance is made again from the live
// data, so that each divergence is counted where it arises rather than
// dragged along. Machines started while the shadow runs are shadowed too
// if the selector picks them. The shadow instance reads the machine's
// feature flags ([fsm.WithFlags]) under the machine's ID, as the live one
// does.
//
// The shadow runs on the machine's goroutine, after the live handler:
// its cost (a handler, and a comparison) is on the live path, so shadow
// in-process versions; a panic or error of the shadow is counted as a
// failure, never reaches the machine. Comparison is by state name: a
// version whose UPGRADE renames states diverges at every event in such a
// state. Replies are equal if reflect.DeepEqual says so or their msgpack
// encodings are equal (two versions may reply with different Go types of
// one shape); error replies compare by text.
//
// Each machine is reloaded onto the shadowing code (suspended for its own
// reload only), and stays on its version: the current version does not
// change. [ReleaseHandler.ShadowReport], [ReleaseHandler.Status] and the
// admin API ("status") report the counts and samples;
// [ReleaseHandler.EndShadow] ends it. The new version must be newer than
// every version the machines run (a chain of UPGRADEs leads to it).
func Shadow(opts ...ShadowOption) Strategy {
	s := &shadow{samples: DefaultShadowSamples}
	for _, o := range opts {
		o(s)
	}
	return s
}

// ShadowReport is what a shadow ([Shadow]) saw: events mirrored,
// divergences (per event name) and samples of them, failures of the
// shadow version (its UPGRADE or a handler failing or panicking where the
// live one did not fail is a divergence; a failure to make the shadow
// instance is a failure).
type ShadowReport struct {
	Machine  string           `json:"machine"`
	To       string           `json:"to"`
	Events   []string         `json:"events,omitempty"` // mirrored event names; empty: all
	Active   bool             `json:"active"`
	Machines int              `json:"machines"` // machines shadowed
	Started  time.Time        `json:"started"`
	Ended    time.Time        `json:"ended,omitzero"`
	Mirrored int64            `json:"mirrored"` // events handled by both
	Diverged int64            `json:"diverged"` // of them, how many diverged
	Failed   int64            `json:"failed"`   // shadow instances that could not be made
	ByEvent  map[string]int64 `json:"by_event,omitempty"`
	Samples  []ShadowSample   `json:"samples,omitempty"`
}

// ShadowSample is one divergence: the machine, the event, and what each
// version did.
type ShadowSample struct {
	ID            string    `json:"id"`
	Event         string    `json:"event"`
	At            time.Time `json:"at"`
	LiveState     string    `json:"live_state"`
	ShadowState   string    `json:"shadow_state"`
	LiveReplies   []string  `json:"live_replies,omitempty"`
	ShadowReplies []string  `json:"shadow_replies,omitempty"`
	LiveError     string    `json:"live_error,omitempty"`
	ShadowError   string    `json:"shadow_error,omitempty"`
}

// shadowRun is one shadow of one machine name: the tap of every machine
// it shadows.
type shadowRun struct {
	machine    string
	to         string
	events     map[string]bool // nil: all
	selector   Selector
	peers      map[string]fsm.Code // shadow code by live version
	maxSamples int
	now        func() time.Time
	logf       func(ShadowSample)

	on                         atomic.Bool
	machines                   atomic.Int64
	mirrored, diverged, failed atomic.Int64

	mu      sync.Mutex
	started time.Time
	ended   time.Time
	byEvent map[string]int64
	samples []ShadowSample
}

// tapFor returns the code a machine with identity t starting on version
// ver runs: code, or code tapped by the shadow if it runs and picks t.
// Called with ReleaseHandler.mu held.
func (s *shadowRun) tapFor(code fsm.Code, ver string, t *tracked) fsm.Code {
	peer := s.peers[ver]
	if peer == nil || !s.on.Load() || !s.selector.picks(t) {
		return code
	}
	s.machines.Add(1)
	return &tapCode{Code: code, id: t.id, tap: s, peer: peer}
}

func (s *shadowRun) report() ShadowReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := ShadowReport{
		Machine: s.machine, To: s.to, Active: s.on.Load(), Machines: int(s.machines.Load()),
		Started: s.started, Ended: s.ended,
		Mirrored: s.mirrored.Load(), Diverged: s.diverged.Load(), Failed: s.failed.Load(),
		ByEvent: maps.Clone(s.byEvent), Samples: slices.Clone(s.samples),
	}
	if s.events != nil {
		r.Events = slices.Sorted(maps.Keys(s.events))
	}
	return r
}

// build makes the shadow instance of ti from the live data.
func (s *shadowRun) build(ctx context.Context, ti *tapInstance) {
	ti.dropShadow()
	var in fsm.Instance
	err := guard(func() error {
		data, err := ti.Instance.Encode()
		if err == nil {
			in, err = ti.c.peer.Upgrade(ctx, ti.c.Code.Version(), ti.Instance.State(), data)
		}
		return err
	})
	if err != nil {
		s.failed.Add(1)
		return
	}
	if u, ok := in.(fsm.FlagUser); ok {
		u.UseFlags(ti.flags) // the live machine's: a flag reads the same in both
	}
	ti.shadow = in
}

// before makes the shadow instance of ti from a copy of the live data,
// before the first mirrored event and after a divergence or events that
// were not mirrored (the shadow's data would lag).
func (s *shadowRun) before(ti *tapInstance, ev fsm.Event) {
	if !s.on.Load() {
		ti.dropShadow()
		return
	}
	if s.events != nil && !s.events[ev.Name()] {
		ti.stale = true
		return
	}
	if ti.shadow == nil || ti.stale {
		ti.stale = false
		s.build(context.Background(), ti)
	}
}

// handled mirrors ev to the shadow instance of ti and compares. It keeps
// its frames small: it runs on the machine's goroutine, whose stack is
// often fresh.
func (s *shadowRun) handled(ti *tapInstance, ev fsm.Event, state string, acts []fsm.Action, err error) {
	if ti.shadow == nil || !s.on.Load() {
		return // not mirrored, or no shadow could be made
	}
	if s.events != nil && !s.events[ev.Name()] {
		return
	}
	sstate, sacts, serr := s.mirror(ti, ev)
	s.mirrored.Add(1)
	if sstate == state && (err == nil) == (serr == nil) && sameReplies(acts, sacts) {
		return
	}
	s.diverge(ti, ev, state, acts, err, sstate, sacts, serr)
}

// mirror runs ev on the shadow instance of ti; a panic is an error.
func (s *shadowRun) mirror(ti *tapInstance, ev fsm.Event) (state string, acts []fsm.Action, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("upgrade: shadow panicked: %v", p)
		}
	}()
	sev, err := ti.c.peer.ConvertEvent(context.Background(), ev)
	if err != nil {
		return "", nil, err
	}
	return ti.shadow.Handle(sev)
}

// diverge counts and samples a divergence, and drops the shadow instance,
// made again from the live data before the next mirrored event.
//
//go:noinline
func (s *shadowRun) diverge(ti *tapInstance, ev fsm.Event, state string, acts []fsm.Action, err error, sstate string, sacts []fsm.Action, serr error) {
	ti.dropShadow()
	s.diverged.Add(1)
	name := ev.Name()
	sample := ShadowSample{ID: ti.c.id, Event: name, LiveState: state, ShadowState: sstate,
		LiveReplies: texts(replies(acts)), ShadowReplies: texts(replies(sacts))}
	if err != nil {
		sample.LiveError = err.Error()
	}
	if serr != nil {
		sample.ShadowError = serr.Error()
	}
	s.mu.Lock()
	if s.byEvent == nil {
		s.byEvent = map[string]int64{}
	}
	s.byEvent[name]++
	keep := len(s.samples) < s.maxSamples
	if keep {
		sample.At = s.now()
		s.samples = append(s.samples, sample)
	}
	s.mu.Unlock()
	if keep && s.logf != nil {
		s.logf(sample)
	}
}

// guard runs f, turning a panic into an error.
func guard(f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("upgrade: shadow panicked: %v", p)
		}
	}()
	return f()
}

// replies returns the values of the replies among acts (an error reply's
// error included).
func replies(acts []fsm.Action) []any {
	var out []any
	for _, a := range acts {
		if k := a.Kind(); k == fsm.ActionReply || k == fsm.ActionReplyError {
			out = append(out, a.Value())
		}
	}
	return out
}

// sameReplies compares the replies among two lists of actions.
func sameReplies(a, b []fsm.Action) bool {
	i, j := 0, 0
	for {
		for i < len(a) && !isReply(a[i]) {
			i++
		}
		for j < len(b) && !isReply(b[j]) {
			j++
		}
		if i == len(a) || j == len(b) {
			return i == len(a) && j == len(b)
		}
		if !sameReply(a[i].Value(), b[j].Value()) {
			return false
		}
		i, j = i+1, j+1
	}
}

func isReply(a fsm.Action) bool {
	k := a.Kind()
	return k == fsm.ActionReply || k == fsm.ActionReplyError
}

func sameReply(a, b any) bool {
	if ia, ok := a.(int); ok { // the common case, without reflection
		if ib, ok := b.(int); ok {
			return ia == ib
		}
	}
	ea, aErr := a.(error)
	eb, bErr := b.(error)
	if aErr || bErr {
		return aErr && bErr && ea.Error() == eb.Error()
	}
	if reflect.DeepEqual(a, b) {
		return true
	}
	// Of different types (each version's own): the same if they are the
	// same msgpack value.
	va, err1 := msgpackValue(a)
	vb, err2 := msgpackValue(b)
	return err1 == nil && err2 == nil && reflect.DeepEqual(va, vb)
}

// msgpackValue is v as msgpack sees it (see msgpackcheck.Value).
func msgpackValue(v any) (any, error) {
	b, err := msgpack.Marshal(v)
	if err != nil {
		return nil, err
	}
	return msgpackcheck.Value(b)
}

func texts(vs []any) []string {
	if len(vs) == 0 {
		return nil
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = fmt.Sprint(v)
	}
	return out
}

// shadowMove is move for Shadow, with r.op held.
func (h *ReleaseHandler) shadowMove(ctx context.Context, op string, r *release, to string, cfg moveConfig, s *shadow, rep *Report) error {
	if op != "upgrade" {
		return fmt.Errorf("upgrade: %s with strategy %s: only an upgrade starts a shadow", op, s)
	}
	run := &shadowRun{machine: r.name, to: to, selector: cfg.selector, peers: map[string]fsm.Code{},
		maxSamples: s.samples, now: h.cfg.now, started: h.cfg.now()}
	if s.events != nil {
		run.events = map[string]bool{}
		for _, e := range s.events {
			run.events[e] = true
		}
	}
	run.logf = func(sm ShadowSample) {
		h.cfg.logger.Warn("upgrade: shadow diverged", "machine", r.name, "to", to, "id", sm.ID, "event", sm.Event,
			"live_state", sm.LiveState, "shadow_state", sm.ShadowState,
			"live_replies", sm.LiveReplies, "shadow_replies", sm.ShadowReplies,
			"live_error", sm.LiveError, "shadow_error", sm.ShadowError)
	}
	run.on.Store(true)

	// Under the start lock: the shadow is set (so machines that start
	// from now on are shadowed at their start) and the running ones are
	// selected.
	var targets []*target // step.code: the tapped code
	err := func() error {
		r.starts.Lock()
		defer r.starts.Unlock()
		h.mu.Lock()
		defer h.mu.Unlock()
		rep.Policy = r.policy.String()
		v := r.versions[to]
		if v == nil {
			return fmt.Errorf("%w: %s %s", ErrUnknownVersion, r.name, to)
		}
		if _, err := v.load(ctx); err != nil {
			return err
		}
		froms := map[string]bool{r.currentLocked(): true}
		for _, t := range r.live {
			if cfg.selector.picks(t) {
				froms[t.version] = true
			}
		}
		for from := range froms {
			if from == to {
				continue
			}
			st, err := h.stepLocked(ctx, r, from, to)
			if err != nil {
				return err
			}
			if st.down {
				return fmt.Errorf("upgrade: shadow %s: %s is older than %s, which a machine runs: a shadow runs a newer version", r.name, to, from)
			}
			run.peers[from] = st.code
		}
		rep.From = sortedKeys(froms)
		if old := r.shadow; old != nil {
			old.end(h.cfg.now())
		}
		r.shadow = run
		for ref, t := range r.live {
			if t.version == to || !cfg.selector.picks(t) {
				continue
			}
			vc := r.versions[t.version].code
			targets = append(targets, &target{ref: ref, t: t, step: step{code: &tapCode{Code: vc, id: t.id, tap: run, peer: run.peers[t.version]}}})
		}
		return nil
	}()
	if err != nil {
		return err
	}
	rep.Selected = len(targets)
	// Each machine is suspended for its own reload only.
	var done atomic.Int64
	tgs := targets
	err = h.parallel(ctx, tgs, func(tg *target) error {
		err := fsm.ChangeCode(ctx, tg.ref, tg.step.code, fsm.Reload())
		switch {
		case err == nil:
			done.Add(1)
			run.machines.Add(1)
		case isNoProc(err):
			tg.gone = true
			err = nil
		}
		return err
	})
	rep.Changed = int(done.Load())
	rep.Exited = count(tgs, func(tg *target) bool { return tg.gone })
	cfg.report("shadowed", rep.Changed, len(targets))
	if err != nil {
		h.takeBack(r, run, rep)
		return fmt.Errorf("upgrade: shadow %s: %w", r.name, err)
	}
	rep.Result = "ok"
	if s.window <= 0 {
		return nil
	}
	// A progress line every tenth of the window, then the end.
	step := s.window / 10
	for i := 1; i <= 10; i++ {
		d := step
		if i == 10 {
			d = s.window - 9*step
		}
		if err := sleepCtx(ctx, d); err != nil {
			h.takeBack(r, run, rep)
			return err
		}
		sr := run.report()
		p := Progress{Phase: "shadow", Done: int(sr.Diverged), Total: int(sr.Mirrored), Shadow: &sr,
			Detail: fmt.Sprintf("%d of %d mirrored events diverged", sr.Diverged, sr.Mirrored)}
		if i == 10 {
			sr = h.endShadow(r, run)
			rep.Shadow = &sr
			p.Shadow, p.Detail = &sr, "ended: "+p.Detail
		}
		cfg.reportDetail(p)
	}
	return nil
}

func (s *shadowRun) end(at time.Time) {
	if s.on.Swap(false) {
		s.mu.Lock()
		s.ended = at
		s.mu.Unlock()
	}
}

// endShadow ends run, if it is r's shadow still, and returns its report.
func (h *ReleaseHandler) endShadow(r *release, run *shadowRun) ShadowReport {
	run.end(h.cfg.now())
	h.mu.Lock()
	h.unloadIdleLocked(r)
	h.mu.Unlock()
	return run.report()
}

// takeBack ends run, a shadow that failed or was given up before its
// end, and says so in rep: no machine is shadowed any more (each drops
// its shadow instance at its next event), the Result is "rolled back",
// and rep.Shadow is what the shadow saw until then.
func (h *ReleaseHandler) takeBack(r *release, run *shadowRun, rep *Report) {
	sr := h.endShadow(r, run)
	rep.Shadow = &sr
	rep.Changed = 0
	rep.Result = "rolled back"
}

// ErrNoShadow is returned by [ReleaseHandler.ShadowReport] and
// [ReleaseHandler.EndShadow] for a machine name that never had a shadow.
var ErrNoShadow = errors.New("upgrade: no shadow")

// ShadowReport returns the report of the running or last shadow
// ([Shadow]) of machine. It returns ErrUnknownMachine or ErrNoShadow.
func (h *ReleaseHandler) ShadowReport(machine string) (ShadowReport, error) {
	r, err := h.lookup(machine)
	if err != nil {
		return ShadowReport{}, err
	}
	h.mu.Lock()
	run := r.shadow
	h.mu.Unlock()
	if run == nil {
		return ShadowReport{}, fmt.Errorf("%w: %s", ErrNoShadow, machine)
	}
	return run.report(), nil
}

// EndShadow ends the shadow of machine and returns its final report: the
// machines stop mirroring events at once (each drops its shadow instance
// at its next event; their code stays the live version's), machines
// started from now on are not shadowed, and the shadow's version is
// unloaded if nothing else needs it. Ending an ended shadow returns its
// report. It logs the report. It returns ErrUnknownMachine or ErrNoShadow.
func (h *ReleaseHandler) EndShadow(ctx context.Context, machine string) (ShadowReport, error) {
	r, err := h.lookup(machine)
	if err != nil {
		return ShadowReport{}, err
	}
	h.mu.Lock()
	run := r.shadow
	h.mu.Unlock()
	if run == nil {
		return ShadowReport{}, fmt.Errorf("%w: %s", ErrNoShadow, machine)
	}
	sr := h.endShadow(r, run)
	h.cfg.logger.Info("upgrade: shadow ended", "machine", machine, "to", sr.To, "machines", sr.Machines,
		"mirrored", sr.Mirrored, "diverged", sr.Diverged, "failed", sr.Failed, "by_event", sr.ByEvent, "samples", sr.Samples)
	return sr, ctx.Err()
}
