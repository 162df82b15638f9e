package upgrade

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cloudflare/tableflip"
)

// A Restarter replaces the running binary with zero downtime: it hands every
// listening socket obtained through it to a new process started from the same
// path, waits until that process is ready, and then tells this one to stop
// accepting and drain. Create it with [NewRestarter]; the zero value is not
// usable and a Restarter must not be copied. Its methods are safe for
// concurrent use.
//
// Only one Restarter may exist in a process, for the life of the process
// (tableflip allows one upgrader), so create it once in main.
type Restarter struct {
	f   flipper
	cfg restartConfig
	log *slog.Logger
	pid int

	readyMu  sync.Mutex    // serialises Ready
	readyC   chan struct{} // closed by Ready: listeners accept from then on
	readying chan struct{} // under mu: a Ready under way, closed when it returns

	mu           sync.Mutex
	state        State
	upgrading    bool // an attempt runs
	parentGone   bool // the process we replaced has exited (or there was none)
	handedOff    bool // a new process took over
	drainStarted bool
	last         RestartAttempt
	hasLast      bool
	hooks        []func(context.Context) error
	listeners    []*listener
	packetConns  []net.PacketConn
	handoff      *Handoff // see NewHandoff

	exitOnce  sync.Once
	exitC     chan struct{} // see Exit
	stopOnce  sync.Once
	stopC     chan struct{}
	stopWatch context.CancelFunc
	sigC      chan os.Signal
	wg        sync.WaitGroup // the signal loop, the parent watcher, attempts
}

// A RestartAttempt describes one upgrade: what started it, when, and how it
// ended.
type RestartAttempt struct {
	// Trigger is what started it: "signal hangup" or "call" (Upgrade or
	// UpgradeHandler).
	Trigger string
	// Started is when the new process was asked for.
	Started time.Time
	// Finished is when the new process became ready or failed; zero while the
	// attempt runs.
	Finished time.Time
	// Err is why the attempt failed (see [Restarter.Upgrade]), nil if the new
	// process took over or the attempt still runs.
	Err error
}

// NewRestarter returns a Restarter for this process. If this process was
// started by an upgrade, its listeners come from the previous process;
// otherwise it is the first generation and Listen creates them.
//
// Unless [WithSignals] says otherwise, SIGHUP starts an upgrade. The
// Restarter owns a few goroutines until [Restarter.Stop] (which
// [Restarter.Run] calls). NewRestarter fails with [ErrNotSupported] on
// Windows, and on any call after the first in a process.
func NewRestarter(opts ...RestartOption) (*Restarter, error) {
	cfg := defaultRestartConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.pidFile != "" {
		abs, err := filepath.Abs(cfg.pidFile)
		if err != nil {
			return nil, fmt.Errorf("upgrade: PID file: %w", err)
		}
		cfg.pidFile = abs
	}
	// The PID file is ours to write (see Ready), so tableflip is not given it.
	upg, err := tableflip.New(tableflip.Options{UpgradeTimeout: cfg.upgradeTimeout})
	if errors.Is(err, tableflip.ErrNotSupported) {
		return nil, ErrNotSupported
	}
	if err != nil {
		return nil, fmt.Errorf("upgrade: new restarter: %w", err)
	}
	return newRestarter(upg, cfg), nil
}

func newRestarter(f flipper, cfg restartConfig) *Restarter {
	r := &Restarter{
		f:          f,
		cfg:        cfg,
		log:        cfg.logger,
		pid:        os.Getpid(),
		readyC:     make(chan struct{}),
		exitC:      make(chan struct{}),
		stopC:      make(chan struct{}),
		parentGone: !f.HasParent(),
	}
	if len(cfg.signals) > 0 {
		r.sigC = make(chan os.Signal, 1)
		cfg.notify(r.sigC, cfg.signals...)
		r.wg.Add(1)
		go r.signalLoop()
	}
	if !r.parentGone {
		ctx, cancel := context.WithCancel(context.Background())
		r.stopWatch = cancel
		r.wg.Add(1)
		go r.watchParent(ctx)
	}
	return r
}

// Listen returns a listener for network ("tcp", "tcp4", "tcp6", "unix" or
// "unixpacket") and addr: the one the previous process passed on for the
// same network and addr, or a new one. Call it before [Restarter.Ready],
// which closes every inherited socket that was not asked for.
//
// Its Accept returns no connection before [Restarter.Ready]: start serving
// on it whenever convenient; until this process is ready, connections wait
// for the previous process, which serves them, and a new process that fails
// before Ready takes none down with it.
//
// Once a new process has taken over, the listener stops accepting, and
// connections wait in the shared queue for the new process: a goroutine in
// Accept waits until the listener is closed and then gets an error matching
// [net.ErrClosed]. (One that was already in the socket at that instant may
// still return one connection that arrived just then; serve it as usual, it
// is drained with the others.) Closing it is safe more than once, and
// [Restarter.Drain] closes it after the drain hooks if they did not. It is
// not a *net.TCPListener; use [net.Listener] methods only.
//
// With a [Handoff], set an accepted connection up ([Handoff.Manage] its
// machine, [Handoff.Adopt] it) before calling Accept again, as an accept
// loop that serves each connection in a goroutine of its own does: a
// handoff holds the listener back and then waits, up to a second, for the
// caller of each connection Accept has just returned to come back for the
// next, so that a connection accepted an instant before the handoff travels
// with its machine. One set up later stays in the old process and drains
// (the handoff logs it).
func (r *Restarter) Listen(network, addr string) (net.Listener, error) {
	if r.State() >= StateDraining {
		return nil, fmt.Errorf("%w: listen %s %s", ErrDraining, network, addr)
	}
	ln, err := r.f.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("upgrade: listen %s %s: %w", network, addr, err)
	}
	l := newListener(ln, r.readyC)
	r.mu.Lock()
	r.listeners = append(r.listeners, l)
	r.mu.Unlock()
	return l, nil
}

// ListenPacket returns a packet conn for network ("udp", "udp4", "udp6",
// "unixgram") and addr, inherited like [Restarter.Listen]'s listeners. It is
// the conn the net package returns (a *net.UDPConn for UDP). While both
// processes run, each datagram is read by one of them; the old process reads
// until it closes the conn, in a drain hook or when [Restarter.Drain] closes
// it after the hooks.
func (r *Restarter) ListenPacket(network, addr string) (net.PacketConn, error) {
	if r.State() >= StateDraining {
		return nil, fmt.Errorf("%w: listen %s %s", ErrDraining, network, addr)
	}
	pc, err := r.f.ListenPacket(network, addr)
	if err != nil {
		return nil, fmt.Errorf("upgrade: listen %s %s: %w", network, addr, err)
	}
	r.mu.Lock()
	r.packetConns = append(r.packetConns, pc)
	r.mu.Unlock()
	return pc, nil
}

// Ready says this process can serve. It writes the PID file (if any), closes
// inherited sockets nobody asked for, and tells the previous process, if
// there is one, to stop accepting and drain. The health handler answers
// "ready" from now on. Calling it again does nothing. In a process started
// by an upgrade that has a [Handoff], it refuses, with an error wrapping
// [ErrHandoff], until [Handoff.Receive] was called, and for good if Receive
// failed: the process must exit, and the previous one resumes everything.
func (r *Restarter) Ready() error {
	r.readyMu.Lock()
	defer r.readyMu.Unlock()
	switch r.State() {
	case StateReady:
		return nil
	case StateDraining, StateStopped:
		return fmt.Errorf("%w: ready", ErrDraining)
	}
	// From the PID file on, this process is named and the previous one may
	// be gone before the state below says ready: an upgrade asked for
	// meanwhile waits for the end of this Ready (see startAttempt).
	readying := make(chan struct{})
	r.mu.Lock()
	h := r.handoff
	r.readying = readying
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.readying = nil
		r.mu.Unlock()
		close(readying)
	}()
	if h != nil {
		if err := h.readyErr(); err != nil {
			return err
		}
	}
	// The PID file names us before the previous process may exit, so a
	// supervisor that reads it when its main PID exits finds this process.
	if r.cfg.pidFile != "" {
		if err := writePIDFile(r.cfg.pidFile, r.pid); err != nil {
			return err
		}
	}
	if err := r.f.Ready(); err != nil {
		return fmt.Errorf("upgrade: ready: %w", err)
	}
	r.mu.Lock()
	if r.state == StateStarting {
		r.state = StateReady
	}
	r.mu.Unlock()
	close(r.readyC)
	r.log.Info("upgrade: ready", "upgraded", r.f.HasParent())
	return nil
}

// Upgrade starts a new process from the same executable path and waits until
// it is ready (it then owns the sockets, and this process must drain: see
// [Restarter.Exit]) or has failed. It is the admin command; the signals of
// [WithSignals] do the same without waiting.
//
// It fails, and this process keeps serving, with [ErrNotReady] before
// [Restarter.Ready] (asked for while Ready runs, it waits for Ready's end,
// or for ctx), [ErrUpgradeInProgress] while another upgrade runs or the
// previous process still drains (the request is refused and logged, not
// queued), [ErrDraining] once this process drains, [ErrChildFailed] if the
// new process could not start or exited, [ErrChildTimeout] if it was not
// ready within the upgrade timeout, and an error wrapping [ErrHandoff],
// before any new process is started, if this process has a [Handoff] that
// cannot listen for the new one (its directory cannot be made again). ctx
// bounds only the wait: when it is done Upgrade returns its error and the
// attempt goes on, its outcome logged and kept in [Restarter.LastAttempt].
func (r *Restarter) Upgrade(ctx context.Context) error {
	done, err := r.startAttempt(ctx, "call")
	if err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("upgrade: stopped waiting for the new process: %w", ctx.Err())
	}
}

// LastAttempt returns the latest upgrade attempt, running or finished, and
// false if there was none.
func (r *Restarter) LastAttempt() (RestartAttempt, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last, r.hasLast
}

// State reports where this process is in its life.
func (r *Restarter) State() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

// Exit returns a channel that is closed when this process must stop serving:
// a new process has taken over, or [Restarter.Drain] or [Restarter.Stop] was
// called.
func (r *Restarter) Exit() <-chan struct{} {
	return r.exitC
}

func (r *Restarter) exit() { r.exitOnce.Do(func() { close(r.exitC) }) }

func (r *Restarter) startAttempt(ctx context.Context, trigger string) (<-chan error, error) {
	r.mu.Lock()
	for r.state == StateStarting && r.readying != nil {
		// A Ready under way: whoever asks has seen this process named
		// (the PID file) or the previous one gone. Decide once it ends.
		readying := r.readying
		r.mu.Unlock()
		select {
		case <-readying:
		case <-ctx.Done():
			return nil, fmt.Errorf("upgrade: stopped waiting for this process to be ready: %w", ctx.Err())
		}
		r.mu.Lock()
	}
	var err error
	switch {
	case r.state == StateStarting:
		err = ErrNotReady
	case r.state >= StateDraining:
		err = ErrDraining
	case r.upgrading:
		err = ErrUpgradeInProgress
	case !r.parentGone:
		err = fmt.Errorf("%w: previous process still draining", ErrUpgradeInProgress)
	}
	if err != nil {
		r.mu.Unlock()
		r.log.Warn("upgrade: request refused", "trigger", trigger, "err", err)
		return nil, err
	}
	r.upgrading = true
	r.last = RestartAttempt{Trigger: trigger, Started: time.Now()}
	r.hasLast = true
	r.wg.Add(1)
	r.mu.Unlock()

	r.log.Info("upgrade: starting new process", "trigger", trigger)
	done := make(chan error, 1)
	go func() {
		defer r.wg.Done()
		done <- r.attempt()
	}()
	return done, nil
}

// Retries of tableflip's Upgrade when it has not yet seen the previous
// process exit, which this Restarter saw a moment before (both learn it from
// the same pipe, through different goroutines).
const (
	parentRetries     = 50
	parentRetryPeriod = 2 * time.Millisecond
)

// upgrade calls tableflip's Upgrade.
func (r *Restarter) upgrade() error {
	for i := 0; ; i++ {
		err := r.f.Upgrade()
		if err == nil || err.Error() != "parent hasn't exited" || i == parentRetries {
			return classify(err)
		}
		t := time.NewTimer(parentRetryPeriod)
		select {
		case <-t.C:
		case <-r.stopC:
			t.Stop()
			return classify(err)
		}
	}
}

// attempt runs one upgrade to its end and records the outcome.
func (r *Restarter) attempt() error {
	ho, err := r.beginHandoff()
	if err == nil {
		err = ho.end(r.upgrade())
	}

	r.mu.Lock()
	r.upgrading = false
	r.last.Finished = time.Now()
	r.last.Err = err
	took := r.last.Finished.Sub(r.last.Started)
	var listeners []*listener
	if err == nil {
		r.handedOff = true
		r.state = max(r.state, StateDraining)
		listeners = r.listeners
	}
	r.mu.Unlock()

	switch {
	case errors.Is(err, ErrDraining):
		r.log.Warn("upgrade: abandoned; this process drains", "err", err, "took", took)
		return err
	case errors.Is(err, ErrUpgradeInProgress), errors.Is(err, ErrNotReady):
		// tableflip refused before starting anything.
		r.log.Warn("upgrade: request refused", "trigger", r.last.Trigger, "err", err)
		return err
	case ho == nil && errors.Is(err, ErrHandoff):
		// No new process was started: the state could not be offered.
		r.log.Error("upgrade: refused; this process keeps serving", "err", err)
		return err
	case err != nil:
		r.log.Error("upgrade: new process failed; this process keeps serving", "err", err, "took", took)
		r.restorePIDFile()
		return err
	}
	// The new process accepts from the shared sockets; this one stops now.
	for _, l := range listeners {
		l.pause()
	}
	r.exit()
	args := []any{"took", took}
	if r.cfg.pidFile != "" {
		if pid, err := readPIDFile(r.cfg.pidFile); err == nil {
			args = append(args, "new_pid", pid)
		}
	}
	r.log.Info("upgrade: new process ready; this process stops accepting and drains", args...)
	return nil
}

// restorePIDFile writes our PID back after a failed attempt: a new process
// writes the file just before it reports ready, and may have died after that.
func (r *Restarter) restorePIDFile() {
	if r.cfg.pidFile == "" {
		return
	}
	if pid, err := readPIDFile(r.cfg.pidFile); err == nil && pid == r.pid {
		return
	}
	if err := writePIDFile(r.cfg.pidFile, r.pid); err != nil {
		r.log.Error("upgrade: cannot restore PID file", "err", err)
	}
}

func (r *Restarter) signalLoop() {
	defer r.wg.Done()
	for {
		select {
		case <-r.stopC:
			return
		case sig := <-r.sigC:
			// Never wait here: a second signal during an attempt must be
			// refused (and logged) at once, not queued behind it.
			_, _ = r.startAttempt(context.Background(), "signal "+sig.String())
		}
	}
}

func (r *Restarter) watchParent(ctx context.Context) {
	defer r.wg.Done()
	err := r.f.WaitForParent(ctx)
	if ctx.Err() != nil {
		return
	}
	r.mu.Lock()
	r.parentGone = true
	r.mu.Unlock()
	if err != nil {
		r.log.Warn("upgrade: previous process exited badly", "err", err)
		return
	}
	r.log.Info("upgrade: previous process exited")
}

// OnDrain registers fn to run when this process drains (see
// [Restarter.Drain]); hooks run one after the other, the last registered
// first, so register in start-up order. A hook stops what it started: it
// stops accepting on its listeners and waits for in-flight work
// ([net/http.Server.Shutdown] does both), stops or hands over the plugin
// processes it started, so none is orphaned. It must return when ctx is done
// (at the drain deadline).
func (r *Restarter) OnDrain(fn func(ctx context.Context) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hooks = append(r.hooks, fn)
}

// Drain takes this process out of service: the health handler answers
// "draining", no upgrade can start, and an upgrade that had not finished is
// abandoned (its process killed). Then, after the lame-duck period (see
// [WithLameDuck]), the listeners stop accepting, the drain hooks run (see
// [Restarter.OnDrain]) with a context that ends at the drain deadline (see
// [WithDrainTimeout]) or with ctx, and every listener and packet conn from
// this Restarter is closed. It returns the hooks' errors joined, and
// [ErrDrainTimeout] if they had not returned by the deadline; a hook still
// running then is left to finish on its own. Drain runs once: later calls
// return [ErrDraining].
//
// Call it when [Restarter.Exit] is closed (after a handoff) or to shut down
// (on SIGTERM), then [Restarter.Stop]; [Restarter.Run] does all three.
func (r *Restarter) Drain(ctx context.Context) error {
	r.mu.Lock()
	if r.drainStarted || r.state == StateStopped {
		r.mu.Unlock()
		return fmt.Errorf("%w: drain", ErrDraining)
	}
	r.drainStarted = true
	r.state = StateDraining
	handedOff := r.handedOff
	hooks := append([]func(context.Context) error(nil), r.hooks...)
	listeners := r.listeners
	r.mu.Unlock()

	start := time.Now()
	r.log.Info("upgrade: draining", "handed_off", handedOff, "hooks", len(hooks))
	// No more upgrades; one that runs is cut short and its process killed.
	r.f.Stop()
	r.exit()

	if r.cfg.lameDuck > 0 {
		t := time.NewTimer(r.cfg.lameDuck)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	for _, l := range listeners {
		l.pause()
	}

	dctx, cancel := context.WithTimeout(ctx, r.cfg.drainTimeout)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		var errs []error
		for i := len(hooks) - 1; i >= 0; i-- {
			if err := hooks[i](dctx); err != nil {
				errs = append(errs, err)
			}
		}
		errc <- errors.Join(errs...)
	}()
	var err error
	select {
	case err = <-errc:
	case <-dctx.Done():
		select {
		case err = <-errc:
		default:
			err = fmt.Errorf("%w: hooks still running: %w", ErrDrainTimeout, dctx.Err())
		}
	}
	if cerr := r.closeSockets(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		r.log.Error("upgrade: drained with errors", "err", err, "took", time.Since(start))
	} else {
		r.log.Info("upgrade: drained", "took", time.Since(start))
	}
	return err
}

// closeSockets closes every listener and packet conn handed out. Closing one
// that a hook already closed is not an error.
func (r *Restarter) closeSockets() error {
	r.mu.Lock()
	listeners, pcs := r.listeners, r.packetConns
	r.listeners, r.packetConns = nil, nil
	r.mu.Unlock()
	var errs []error
	for _, l := range listeners {
		l.pause()
		if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	for _, pc := range pcs {
		if err := pc.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("upgrade: close sockets: %w", errors.Join(errs...))
	}
	return nil
}

// Stop ends the Restarter: no more upgrades (one that runs is abandoned and
// its process killed), signals are no longer watched, its goroutines have
// returned, and its listeners and packet conns are closed, without running
// the drain hooks (call [Restarter.Drain] first for that). If no new process
// took over, Unix socket files are removed and so is the PID file if it
// still names this process. Stop is idempotent.
func (r *Restarter) Stop() {
	r.stopOnce.Do(func() {
		r.mu.Lock()
		r.state = StateStopped
		r.mu.Unlock()

		r.f.Stop()
		r.exit()
		if r.sigC != nil {
			r.cfg.stopNotify(r.sigC)
		}
		if r.stopWatch != nil {
			r.stopWatch()
		}
		close(r.stopC)
		r.wg.Wait()

		if err := r.closeSockets(); err != nil {
			r.log.Warn("upgrade: stop", "err", err)
		}
		r.mu.Lock()
		handedOff := r.handedOff
		r.mu.Unlock()
		if !handedOff && r.cfg.pidFile != "" {
			if err := removePIDFile(r.cfg.pidFile, r.pid); err != nil {
				r.log.Warn("upgrade: stop", "err", err)
			}
		}
	})
}

// Run serves until this process must stop: a new process took over
// ([Restarter.Exit] is closed) or ctx is done (use [os/signal.NotifyContext]
// for SIGTERM). It then drains (see [Restarter.Drain], with a deadline that
// ctx's end does not cut short) and stops the Restarter, and returns the
// drain's error. Call it after [Restarter.Ready], typically as the last line
// of main.
func (r *Restarter) Run(ctx context.Context) error {
	select {
	case <-r.exitC:
	case <-ctx.Done():
	}
	err := r.Drain(context.WithoutCancel(ctx))
	r.Stop()
	return err
}
