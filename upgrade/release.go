package upgrade

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/flags"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/plugin"
)

// A ReleaseHandler knows, per machine name, the versions of its code, which
// one is current (new machines start on it) and which is permanent (a
// restarted host comes back on it), and the machines that run; it moves
// running machines from one version to another. See the package
// documentation, section "Release handler".
//
// Make one with [NewReleaseHandler]; the zero value is not usable. A
// ReleaseHandler is safe for concurrent use and must not be copied. Call
// [ReleaseHandler.Close] when done.
type ReleaseHandler struct {
	sys     *actor.System
	cfg     releaseConfig
	watcher actor.Ref
	journal *journal

	mu        sync.Mutex
	closed    bool
	machines  map[string]*release
	recovered []Recovery
	handoff   *handoffHold // the upgrades a handoff holds, or nil
	// handoffWaits, if set, is told when a handoff waits for an upgrade
	// of a machine name to end (a test seam).
	handoffWaits func(machine string)

	// plugins is the handler's plugin directory state (plugins.go).
	plugins pluginState
}

// release is what the handler knows of one machine name. Fields are
// guarded by ReleaseHandler.mu, except where said.
type release struct {
	name      string
	versions  map[string]*version
	order     []string // registration order: oldest first
	current   string
	permanent string
	// journaled is the version the journal named at start ("" if none);
	// warned, that a start on another one (it is not registered) was
	// logged.
	journaled string
	warned    bool
	history   []string // earlier currents, for Rollback
	policy    Policy
	live      map[actor.Ref]*tracked
	last      *Report
	sessions  *sessions  // a new-sessions rollout, or nil
	moving    int        // moves under way (h.mu): nothing is unloaded meanwhile
	shadow    *shadowRun // the last shadow (dark launch), or nil

	// op serialises upgrades, rollbacks and confirms (TryLock: refused),
	// and a handoff with them (release_exclusion.go).
	op opLock
	// starts is held for reading by Start and for writing by an upgrade
	// from its selection to its commit, so that a machine starts either
	// before the cut (and is moved) or after it (on the new version).
	starts sync.RWMutex
}

// version is one version of a machine's code.
type version struct {
	name   string
	origin origin
	source func(ctx context.Context) (fsm.Code, io.Closer, error)
	code   fsm.Code  // non-nil while loaded
	closer io.Closer // what unload closes: the source's, or code's own
	refs   int       // live machines that run it
	paths  fsm.Paths
}

// origin says where a version's code comes from, for Status.
type origin struct {
	kind     string // originInProcess, originPlugin or originSource
	path     string // the plugin binary
	checksum string // its SHA-256 in hex
}

// Where a version comes from (VersionStatus.Source).
const (
	originInProcess = "in-process"
	originPlugin    = "plugin"
	originSource    = "source"
)

// tracked is one live machine.
type tracked struct {
	version string
	id      string
	tags    map[string]string
}

// A ReleaseOption configures a [ReleaseHandler]; pass them to
// [NewReleaseHandler].
type ReleaseOption func(*releaseConfig)

type releaseConfig struct {
	logger     *slog.Logger
	metrics    Metrics
	journalDir string
	workers    int
	policies   map[string]Policy
	pluginOpts []plugin.Option
	flags      *flags.Set // WithFlags; nil: none

	now     func() time.Time // test seam: the clock of reports
	gosched func()           // test seam: how a rolling worker yields its time slice
	// Test seams of the rolling worker: oneWindow moves each machine in
	// one suspension (ChangeSuspended, as before the Stager), for a
	// baseline; observePause, if set, gets the length of each machine's
	// two suspensions (commit is 0 with oneWindow).
	oneWindow    bool
	observePause func(stage, commit time.Duration)
	// atWindow, a test seam, if set, runs on the worker that suspended a
	// machine, once the suspension is made (resume false) and before it
	// resumes it (resume true): window 0 is a rolling worker's Stage (or
	// its one window) and the cut's change, window 1 the Commit.
	atWindow func(ref actor.Ref, window int, resume bool)
}

// at calls the atWindow seam, if set.
func (c *releaseConfig) at(ref actor.Ref, window int, resume bool) {
	if c.atWindow != nil {
		c.atWindow(ref, window, resume)
	}
}

// WithReleaseLogger sets where the handler logs each upgrade, rollback and
// confirm (one record each). Default: the logger of the [actor.System].
// A nil logger keeps the default.
func WithReleaseLogger(l *slog.Logger) ReleaseOption {
	return func(c *releaseConfig) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithMetrics sets where the handler counts upgrades and machines (see
// [Metrics], and [PromMetrics] for Prometheus). Default: none.
func WithMetrics(m Metrics) ReleaseOption {
	return func(c *releaseConfig) { c.metrics = m }
}

// WithJournal keeps the journal of upgrades in dir (created if needed, mode
// 0700), so that a host that dies mid-upgrade resolves it at the next
// [NewReleaseHandler], and a restarted host comes back on the permanent
// versions. Default: no journal (nothing survives the process).
//
// The old and the new process of a binary restart share dir (the new one
// opens it while the old one runs); give each independent service a
// directory of its own: two handlers on one directory are not refused,
// and a machine name both use takes the decisions of either. Besides
// release.journal, dir holds release.journal.lock (the compactions'
// lock, never removed) and, while one runs, a compaction's temporary
// file.
func WithJournal(dir string) ReleaseOption {
	return func(c *releaseConfig) { c.journalDir = dir }
}

// WithWorkers sets how many goroutines suspend, change and resume machines
// in parallel during an upgrade. Default: 4 × GOMAXPROCS; n <= 0 keeps the
// default.
func WithWorkers(n int) ReleaseOption {
	return func(c *releaseConfig) {
		if n > 0 {
			c.workers = n
		}
	}
}

// WithPolicy sets what an upgrade does to the running machines of machine;
// see [Policy]. Default: [PolicyMigrate]. [ReleaseHandler.SetPolicy]
// changes it later.
func WithPolicy(machine string, p Policy) ReleaseOption {
	return func(c *releaseConfig) { c.policies[machine] = p }
}

// Policy says what an upgrade does to the machines running when it starts.
type Policy uint8

const (
	// PolicyMigrate changes the code of each running machine and migrates
	// its data (UPGRADE). The default.
	PolicyMigrate Policy = iota
	// PolicyPin leaves running machines on their version until they exit;
	// machines started after the upgrade start on the new version. The
	// old version stays loaded until its last machine exits.
	PolicyPin
	// PolicyRestart stops each running machine with [ErrRestarted], for
	// code whose state is cheap to rebuild; its supervisor starts it again
	// (through [ReleaseHandler.Start]) on the new version.
	PolicyRestart
)

var policyNames = [...]string{"migrate", "pin", "restart"}

func (p Policy) String() string {
	if int(p) < len(policyNames) {
		return policyNames[p]
	}
	return fmt.Sprintf("policy(%d)", p)
}

// NewReleaseHandler returns a release handler for machines that run in
// sys. With [WithJournal], it reads the journal and resolves an upgrade
// that a previous process left unfinished (see [ReleaseHandler.Recovered]);
// it returns an error wrapping ErrBadJournal if the journal cannot be read
// or written.
func NewReleaseHandler(sys *actor.System, opts ...ReleaseOption) (*ReleaseHandler, error) {
	cfg := releaseConfig{
		logger:   sys.Logger(),
		workers:  4 * runtime.GOMAXPROCS(0),
		policies: make(map[string]Policy),
		now:      time.Now,
		gosched:  runtime.Gosched,
	}
	for _, o := range opts {
		o(&cfg)
	}
	h := &ReleaseHandler{sys: sys, cfg: cfg, machines: make(map[string]*release)}
	if cfg.journalDir != "" {
		j, rec, err := openJournal(cfg.journalDir)
		if err != nil {
			return nil, err
		}
		h.journal, h.recovered = j, append(rec.dropped, rec.recoveries...)
		for name, st := range rec.state {
			r := h.releaseLocked(name)
			r.current, r.permanent, r.journaled = st.permanent, st.permanent, st.permanent
		}
		for _, rc := range rec.dropped {
			cfg.logger.Warn("upgrade: dropped a line of the journal that was not a whole record",
				"machine", rc.Machine, "detail", rc.Detail)
		}
		for _, rc := range rec.recoveries {
			cfg.logger.Warn("upgrade: resolved an unfinished upgrade of the previous process",
				"machine", rc.Machine, "kind", rc.Kind, "from", rc.From, "to", rc.To, "outcome", rc.Outcome, "current", rc.Current)
		}
	}
	w, err := sys.Spawn(&watcher{h: h})
	if err != nil {
		if h.journal != nil {
			_ = h.journal.close()
		}
		return nil, fmt.Errorf("upgrade: start the release handler: %w", err)
	}
	h.watcher = w
	return h, nil
}

// Close stops tracking machines, closes the journal, and closes every
// loaded version that implements [io.Closer] (a plugin process): call it
// once the machines have stopped. Closing a closed handler does nothing.
func (h *ReleaseHandler) Close(ctx context.Context) error {
	h.mu.Lock()
	closed := h.closed
	h.closed = true
	h.mu.Unlock()
	if closed {
		return nil
	}
	err := actor.Stop(ctx, h.watcher, actor.Normal)
	if err != nil && !isNoProc(err) {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var errs []error
	for _, r := range h.machines {
		for _, v := range r.versions {
			errs = append(errs, v.unload())
		}
	}
	errs = append(errs, h.closePluginsLocked())
	if h.journal != nil {
		errs = append(errs, h.journal.close())
	}
	return joinErrs(errs)
}

// Recovered returns what [NewReleaseHandler] did about upgrades that the
// previous process left unfinished or unconfirmed, read from the journal,
// after the lines of the journal it dropped as not whole records (Outcome
// "dropped", first), and then, by machine name, each version the journal
// named that is not registered (Outcome "unknown version": the machine
// runs its first registered version instead; see
// [ReleaseHandler.Register]). That last part is evaluated at the call:
// call Recovered once the versions are registered.
func (h *ReleaseHandler) Recovered() []Recovery {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := slices.Clone(h.recovered)
	for _, name := range slices.Sorted(maps.Keys(h.machines)) {
		if rc, ok := h.machines[name].unknownLocked(); ok {
			out = append(out, rc)
		}
	}
	return out
}

// unknownLocked returns the Recovery that reports the version the journal
// named for r, if it is not registered and still r's permanent version,
// once a version of r is registered.
func (r *release) unknownLocked() (Recovery, bool) {
	if r.journaled == "" || len(r.order) == 0 || r.permanent != r.journaled || r.versions[r.journaled] != nil {
		return Recovery{}, false
	}
	used := r.order[0]
	return Recovery{
		Machine: r.name, Kind: "journal", To: r.journaled, Outcome: OutcomeUnknownVersion, Current: used,
		Detail: fmt.Sprintf("the journal names version %s, which is not registered: machines start on %s, the first registered, until %s is registered or another version is confirmed",
			r.journaled, used, r.journaled),
	}, true
}

func (h *ReleaseHandler) releaseLocked(name string) *release {
	r := h.machines[name]
	if r == nil {
		r = &release{name: name, versions: make(map[string]*version), live: make(map[actor.Ref]*tracked), policy: h.cfg.policies[name]}
		h.machines[name] = r
		h.holdNewLocked(r)
	}
	return r
}

func (h *ReleaseHandler) lookup(name string) (*release, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.machines[name]
	if r == nil || len(r.versions) == 0 {
		return nil, fmt.Errorf("%w: %q", ErrUnknownMachine, name)
	}
	return r, nil
}

// Register makes an in-process version available: code.Machine() names the
// machine and code.Version() the version. Register versions oldest first:
// the order says which way is up (UPGRADE) and which is down. The first
// version of a machine becomes its current and permanent version, unless
// the journal ([WithJournal]) names another. While the version the
// journal names is not registered, machines start on the first
// registered version, [ReleaseHandler.Recovered] reports it (Outcome
// "unknown version") and the first such start logs a warning; the journal
// keeps the version it named (Status shows it as permanent), so that a
// host that registers it, now or at a later start, comes back on it,
// until [ReleaseHandler.Confirm] makes another permanent. It returns
// ErrDuplicateVersion for a version registered already.
func (h *ReleaseHandler) Register(code fsm.Code) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.registerLocked(code.Machine(), code.Version(), origin{kind: originInProcess},
		func(context.Context) (fsm.Code, io.Closer, error) { return code, nil, nil })
}

// RegisterSource makes a version available whose code is loaded when a
// machine first needs it, by load, and unloaded (closed, if it implements
// [io.Closer]) when no machine runs it and it is neither current nor
// permanent. This is the seam through which plugin-hosted versions come:
// load starts the plugin process (after checking its checksum). See
// [ReleaseHandler.Register] for the order.
func (h *ReleaseHandler) RegisterSource(machine, ver string, load func(ctx context.Context) (fsm.Code, error)) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.registerLocked(machine, ver, origin{kind: originSource}, func(ctx context.Context) (fsm.Code, io.Closer, error) {
		c, err := load(ctx)
		return c, nil, err
	})
}

func (h *ReleaseHandler) registerLocked(machine, ver string, o origin, load func(ctx context.Context) (fsm.Code, io.Closer, error)) error {
	r := h.releaseLocked(machine)
	if _, dup := r.versions[ver]; dup {
		return fmt.Errorf("%w: %s %s", ErrDuplicateVersion, machine, ver)
	}
	r.versions[ver] = &version{name: ver, origin: o, source: load}
	r.order = append(r.order, ver)
	if r.current == "" {
		r.current, r.permanent = ver, ver
	}
	return nil
}

// currentLocked returns the version new machines start on.
func (r *release) currentLocked() string {
	if _, ok := r.versions[r.current]; ok {
		return r.current
	}
	return r.order[0]
}

// load returns the version's code, loading it if needed. Called with h.mu
// held: loading an in-process version is immediate; a plugin's start is
// bounded by ctx.
func (v *version) load(ctx context.Context) (fsm.Code, error) {
	if v.code != nil {
		return v.code, nil
	}
	c, cl, err := v.source(ctx)
	if err != nil {
		return nil, fmt.Errorf("upgrade: load version %s: %w", v.name, err)
	}
	if cl == nil {
		cl, _ = c.(io.Closer)
	}
	v.code, v.closer = c, cl
	v.paths, _ = c.(fsm.Paths)
	return c, nil
}

func (v *version) unload() error {
	cl := v.closer
	v.code, v.closer, v.paths = nil, nil, nil
	if cl != nil {
		return cl.Close()
	}
	return nil
}

// unloadIdleLocked unloads the versions of r that nothing needs.
func (h *ReleaseHandler) unloadIdleLocked(r *release) {
	if r.moving > 0 {
		// A move holds codes it has loaded (its target, the versions it may
		// move machines back to) before any machine counts on them; a
		// machine's exit meanwhile must not unload them under it (a closed
		// plugin fails the move). The move's end unloads what is idle.
		return
	}
	current := r.currentLocked()
	for _, v := range r.versions {
		if v.code != nil && v.refs == 0 && v.name != current && v.name != r.permanent && !r.needs(v.name) {
			if err := v.unload(); err != nil {
				h.cfg.logger.Warn("upgrade: unload a version", "machine", r.name, "version", v.name, "error", err)
			}
		}
	}
}

// needs reports whether a new-sessions rollout or a running shadow needs
// version ver loaded.
func (r *release) needs(ver string) bool {
	if s := r.sessions; s != nil && s.to == ver && s.share > 0 {
		return true
	}
	return r.shadow != nil && r.shadow.on.Load() && r.shadow.to == ver
}

// SetPolicy sets what upgrades do to the running machines of machine.
func (h *ReleaseHandler) SetPolicy(machine string, p Policy) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cfg.policies[machine] = p
	h.releaseLocked(machine).policy = p
}

// Start starts a machine of the given name on its current version (or a
// newer one, if an upgrade commits meanwhile: a machine starts either
// before an upgrade's cut, and is moved with the others, or after it) and
// tracks it until it exits. It suits a supervisor's child spec. It returns
// ErrUnknownMachine, and the errors of [fsm.Start].
func (h *ReleaseHandler) Start(ctx context.Context, machine string, opts ...fsm.StartOption) (actor.Ref, error) {
	return h.start(ctx, machine, nil, opts)
}

// Restore starts a machine from a snapshot, such as one handed over by a
// binary restart, on the current version: through the chain of UPGRADE
// (or downgrade) handlers from the snapshot's version if there is no direct
// one. It returns the errors of Start, ErrUnknownVersion and ErrNoPath.
func (h *ReleaseHandler) Restore(ctx context.Context, s fsm.Snapshot, opts ...fsm.StartOption) (actor.Ref, error) {
	return h.start(ctx, s.Machine, &s, opts)
}

func (h *ReleaseHandler) start(ctx context.Context, machine string, snap *fsm.Snapshot, opts []fsm.StartOption) (actor.Ref, error) {
	r, err := h.lookup(machine)
	if err != nil {
		return actor.Ref{}, err
	}
	r.starts.RLock()
	defer r.starts.RUnlock()
	h.mu.Lock()
	ver := r.currentLocked()
	if rc, ok := r.unknownLocked(); ok && !r.warned {
		r.warned = true
		h.cfg.logger.Warn("upgrade: the journal names a version that is not registered", "machine", machine, "version", rc.To, "current", rc.Current)
	}
	var id string
	var tags map[string]string
	if r.sessions != nil || r.shadow != nil {
		id, tags = fsm.StartIdentity(opts...)
	}
	// The side is counted once the machine has started (a failed start is
	// not a session), in the rollout that admitted it.
	var admitted *sessions
	side := 0
	if s := r.sessions; s != nil && snap == nil && r.versions[s.to] != nil {
		if ver == s.to || (s.selector.picks(&tracked{id: id, tags: tags}) && s.admit(r.name, id)) {
			ver, side = s.to, 1
		}
		admitted = s
	}
	code, err := r.versions[ver].load(ctx)
	if err == nil && snap != nil && snap.Version != ver {
		code, err = h.pathCodeLocked(ctx, r, snap.Version, ver)
		opts = append(slices.Clip(opts), fsm.FromSnapshot(*snap))
	} else if snap != nil {
		opts = append(slices.Clip(opts), fsm.FromSnapshot(*snap))
	}
	if err != nil {
		h.mu.Unlock()
		return actor.Ref{}, err
	}
	r.versions[ver].refs++ // held while it starts, so it is not unloaded
	if sh := r.shadow; sh != nil {
		code = sh.tapFor(code, ver, &tracked{id: id, tags: tags})
	}
	h.mu.Unlock()

	if h.cfg.flags != nil { // first, so that the caller's WithFlags wins
		opts = append([]fsm.StartOption{fsm.WithFlags(h.cfg.flags)}, opts...)
	}
	ref, err := fsm.Start(ctx, h.sys, code, opts...)
	var inf fsm.Info
	if err == nil {
		inf, err = fsm.Inspect(ctx, ref)
		if err != nil && !isNoProc(err) {
			_ = actor.Stop(context.WithoutCancel(ctx), ref, err)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if admitted != nil && (err == nil || isNoProc(err)) {
		admitted.started[side]++
	}
	if err != nil {
		r.versions[ver].refs--
		h.unloadIdleLocked(r)
		if isNoProc(err) {
			return ref, nil // it started and exited at once
		}
		return actor.Ref{}, err
	}
	r.live[ref] = &tracked{version: ver, id: inf.ID, tags: inf.Tags}
	if err := actor.Send(h.watcher, watch{ref: ref, machine: machine}); err != nil {
		// The handler is closed: the machine runs untracked.
		delete(r.live, ref)
		r.versions[ver].refs--
	}
	return ref, nil
}

// exited forgets a machine that exited.
func (h *ReleaseHandler) exited(machine string, ref actor.Ref) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.machines[machine]
	if r == nil {
		return
	}
	t, ok := r.live[ref]
	if !ok {
		return
	}
	delete(r.live, ref)
	if v := r.versions[t.version]; v != nil {
		v.refs--
	}
	h.unloadIdleLocked(r)
}

// watcher monitors every machine the handler started, and tells the
// handler when one exits: one actor, no goroutine per machine.
type watcher struct {
	h     *ReleaseHandler
	names map[actor.Ref]string // machine name by ref
}

type watch struct {
	ref     actor.Ref
	machine string
}

func (w *watcher) Receive(c *actor.Context, msg any) {
	switch m := msg.(type) {
	case watch:
		if w.names == nil {
			w.names = make(map[actor.Ref]string)
		}
		w.names[m.ref] = m.machine
		c.Monitor(m.ref)
	case actor.Down:
		if name, ok := w.names[m.Actor]; ok {
			delete(w.names, m.Actor)
			w.h.exited(name, m.Actor)
		}
	}
}

// VersionStatus describes one version of a machine.
type VersionStatus struct {
	Version   string `json:"version"`
	Loaded    bool   `json:"loaded"`
	Machines  int    `json:"machines"`
	Current   bool   `json:"current,omitempty"`
	Permanent bool   `json:"permanent,omitempty"`
	// Source says where the code comes from: "in-process"
	// ([ReleaseHandler.Register]), "plugin" ([ReleaseHandler.ScanPlugins]:
	// Path is the binary and Checksum its SHA-256 in hex) or "source"
	// ([ReleaseHandler.RegisterSource]).
	Source   string `json:"source"`
	Path     string `json:"path,omitempty"`
	Checksum string `json:"checksum,omitempty"`
}

// MachineStatus describes one machine name: its versions, oldest first,
// and the last upgrade or rollback.
type MachineStatus struct {
	Machine   string          `json:"machine"`
	Current   string          `json:"current"`
	Permanent string          `json:"permanent"`
	Policy    string          `json:"policy"`
	Versions  []VersionStatus `json:"versions"`
	Last      *Report         `json:"last,omitempty"`
	// Sessions is the new-sessions rollout, if one was set ([NewSessions]).
	Sessions *SessionsStatus `json:"sessions,omitempty"`
	// Shadow is the report of the running or last shadow ([Shadow]).
	Shadow *ShadowReport `json:"shadow,omitempty"`
}

// Status describes every machine name the handler knows, sorted by name.
func (h *ReleaseHandler) Status() []MachineStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]MachineStatus, 0, len(h.machines))
	for _, name := range slices.Sorted(maps.Keys(h.machines)) {
		r := h.machines[name]
		if len(r.order) == 0 {
			continue
		}
		ms := MachineStatus{Machine: name, Current: r.currentLocked(), Permanent: r.permanent, Policy: r.policy.String()}
		for _, vn := range r.order {
			v := r.versions[vn]
			ms.Versions = append(ms.Versions, VersionStatus{
				Version: vn, Loaded: v.code != nil, Machines: v.refs,
				Current: vn == ms.Current, Permanent: vn == r.permanent,
				Source: v.origin.kind, Path: v.origin.path, Checksum: v.origin.checksum,
			})
		}
		if r.last != nil {
			l := *r.last
			ms.Last = &l
		}
		if r.sessions != nil {
			ms.Sessions = r.sessions.status()
		}
		if r.shadow != nil {
			sr := r.shadow.report()
			ms.Shadow = &sr
		}
		out = append(out, ms)
	}
	return out
}
