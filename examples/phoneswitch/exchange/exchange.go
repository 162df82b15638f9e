package exchange

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/examples/phoneswitch/phone"
	"github.com/hotline-go/hotline/examples/phoneswitch/protocol"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/plugin"
)

// Errors of [New], [Switch.Upgrade] and [Switch.Rollback].
var (
	ErrNoVersions     = errors.New("exchange: no versions of the phone machine")
	ErrUnknownVersion = errors.New("exchange: unknown version")
	ErrSameVersion    = errors.New("exchange: already on that version")
	ErrNoRollback     = errors.New("exchange: nothing to roll back")
	ErrClosed         = errors.New("exchange: switch closed")
	ErrNumberTaken    = errors.New("exchange: number taken")
)

// A Switch serves phone lines. Create one with [New]; it is safe for
// concurrent use; [Switch.Close] ends it.
type Switch struct {
	cfg config
	log *slog.Logger
	sys *actor.System

	// upgrading is held for writing while every phone changes code, and
	// for reading while a phone starts or stops, so that no phone starts
	// on the old version after the others moved.
	upgrading sync.RWMutex

	mu       sync.Mutex
	current  int // index in cfg.versions
	previous int // -1: none
	lines    map[string]*line
	conns    map[*conn]struct{}
	idle     chan struct{} // closed when conns becomes empty
	closed   bool
	handoff  *Handoff // while the lines are detached (handoff.go)
	round    []*conn  // paused for a binary restart (binary.go)
	connSeq  int      // names connections in the upgrade.Handoff
	wg       sync.WaitGroup
	counters counters
}

// line is a registered number: its machine and its connection.
type line struct {
	ref  actor.Ref
	c    *conn
	peer string // the last phone its machine signalled; guarded by Switch.mu
}

// New returns a switch running the versions given by [WithVersions].
func New(opts ...Option) (*Switch, error) {
	cfg := config{
		logger:       slog.Default(),
		now:          time.Now,
		writeQueue:   DefaultWriteQueue,
		stallTimeout: DefaultStallTimeout,
		callTimeout:  DefaultCallTimeout,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if len(cfg.versions) == 0 {
		return nil, ErrNoVersions
	}
	if cfg.version == "" {
		cfg.version = cfg.versions[0].Version()
	}
	s := &Switch{cfg: cfg, log: cfg.logger, previous: -1, lines: map[string]*line{}, conns: map[*conn]struct{}{}}
	i, err := s.index(cfg.version)
	if err != nil {
		return nil, err
	}
	s.current = i
	s.sys = cfg.sys
	if s.sys == nil {
		s.sys = actor.NewSystem(actor.WithLogger(cfg.logger))
	}
	return s, nil
}

func (s *Switch) index(version string) (int, error) {
	i := slices.IndexFunc(s.cfg.versions, func(c fsm.Code) bool { return c.Version() == version })
	if i < 0 {
		return 0, fmt.Errorf("%w: %q", ErrUnknownVersion, version)
	}
	return i, nil
}

// Serve accepts phone lines on ln until ln is closed (then it returns nil)
// or fails. Each connection is served until it closes or the switch does.
func (s *Switch) Serve(ln net.Listener) error {
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("exchange: accept: %w", err)
		}
		if err := s.ServeConn(nc); err != nil {
			return err
		}
	}
}

// ServeConn serves one phone line on nc, in goroutines of its own, and
// returns at once. It returns ErrClosed (and closes nc) once the switch
// is closed.
func (s *Switch) ServeConn(nc net.Conn) error {
	c := newConn(s, nc)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.Join(ErrClosed, nc.Close())
	}
	if s.handoff != nil {
		s.mu.Unlock()
		s.log.Warn("exchange: connection refused during a handoff", "remote", nc.RemoteAddr())
		if err := nc.Close(); err != nil {
			s.log.Debug("exchange: close", "err", err)
		}
		return nil // not an error for Serve: it goes on
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.handConn(c)
	s.counters.connections.Add(1)
	go func() {
		defer s.wg.Done()
		c.run()
	}()
	return nil
}

func (s *Switch) connDone(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	if len(s.conns) == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
}

// register starts a machine for number on c.
func (s *Switch) register(ctx context.Context, c *conn, number string) (actor.Ref, error) {
	s.upgrading.RLock()
	defer s.upgrading.RUnlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return actor.Ref{}, ErrClosed
	}
	if s.handoff != nil {
		return actor.Ref{}, ErrDetached
	}
	if _, ok := s.lines[number]; ok {
		return actor.Ref{}, fmt.Errorf("%w: %s", ErrNumberTaken, number)
	}
	ref, err := fsm.Start(ctx, s.sys, s.cfg.versions[s.current], fsm.WithID(number))
	if err != nil {
		return actor.Ref{}, fmt.Errorf("exchange: start phone %s: %w", number, err)
	}
	if h := s.cfg.handoff; h != nil {
		// Under s.mu: the number is managed exactly while it is in s.lines.
		if err := h.Manage(number, ref); err != nil {
			return actor.Ref{}, errors.Join(fmt.Errorf("exchange: phone %s: %w", number, err), actor.Stop(ctx, ref, nil))
		}
	}
	s.lines[number] = &line{ref: ref, c: c}
	return ref, nil
}

// hangUp ends number's calls: with its machine's ONHOOK, or, if its machine
// has failed, with a hang-up from it to the last phone it signalled (which
// ignores it unless that call is still on).
func (s *Switch) hangUp(ctx context.Context, number string) {
	err := s.deliver(ctx, number, phone.OnHook{})
	if err == nil {
		return
	}
	s.log.Warn("exchange: hang up", "number", number, "err", err)
	s.mu.Lock()
	var peer string
	if l, ok := s.lines[number]; ok {
		peer = l.peer
	}
	s.mu.Unlock()
	if peer == "" {
		return
	}
	if err := s.route(ctx, hop{from: number, to: peer, ev: phone.Hangup{From: number}}); err != nil {
		s.log.Warn("exchange: hang up the peer", "number", number, "peer", peer, "err", err)
	}
}

// unregister stops the machine of number, registered by c.
func (s *Switch) unregister(ctx context.Context, c *conn, number string) {
	s.upgrading.RLock()
	defer s.upgrading.RUnlock()
	s.mu.Lock()
	l, ok := s.lines[number]
	if ok && l.c == c {
		delete(s.lines, number)
		if s.cfg.handoff != nil {
			s.cfg.handoff.Unmanage(number)
		}
	}
	s.mu.Unlock()
	if !ok || l.c != c {
		return
	}
	if err := actor.Stop(ctx, l.ref, nil); err != nil && !errors.Is(err, actor.ErrNoProc) {
		s.log.Warn("exchange: stop phone", "number", number, "err", err)
	}
}

func (s *Switch) lookup(number string) (*line, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.lines[number]
	return l, ok
}

type hop struct {
	from string // who sent it; "" for the phone's own line
	to   string
	ev   any
}

// deliver sends ev to the phone number, writes the lines of its answer to
// that phone's connection, and delivers the signals of the answer, and of
// theirs, until none is left. It returns the error of the first event, to
// the phone's own line: the others are logged.
func (s *Switch) deliver(ctx context.Context, number string, ev any) error {
	return s.route(ctx, hop{to: number, ev: ev})
}

// route delivers the event of first, and what follows from it.
func (s *Switch) route(ctx context.Context, first hop) error {
	queue := []hop{first}
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		l, ok := s.lookup(h.to)
		if !ok {
			if _, ring := h.ev.(phone.Ring); ring {
				queue = append(queue, hop{from: h.to, to: h.from, ev: phone.Busy{From: h.to, Reason: protocol.BusyUnknown}})
			}
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, s.cfg.callTimeout)
		v, err := fsm.Call(cctx, l.ref, h.ev)
		cancel()
		if err != nil {
			if h.from == "" {
				return fmt.Errorf("exchange: phone %s: %w", h.to, err)
			}
			s.log.Warn("exchange: signal not delivered", "from", h.from, "to", h.to, "event", fsm.EventName(h.ev), "err", err)
			continue
		}
		out, err := asOutput(v)
		if err != nil {
			return fmt.Errorf("exchange: phone %s: %w", h.to, err)
		}
		s.count(h.ev)
		if out.To != "" {
			s.mu.Lock()
			l.peer = out.To
			s.mu.Unlock()
		}
		if l.c != nil { // nil for a machine whose line is gone or not yet restored
			l.c.enqueue(out.Lines...)
		}
		for _, sig := range out.Signals {
			e, err := sig.Event(h.to)
			if err != nil {
				s.log.Warn("exchange: bad signal", "from", h.to, "err", err)
				continue
			}
			queue = append(queue, hop{from: h.to, to: out.To, ev: e})
		}
	}
	return nil
}

// asOutput returns the reply of a phone's machine as a [phone.Output]:
// as it is from an in-process machine, decoded from the generic msgpack
// value that a plugin-hosted machine's reply arrives as.
func asOutput(v any) (phone.Output, error) {
	if out, ok := v.(phone.Output); ok {
		return out, nil
	}
	out, err := plugin.As[phone.Output](v)
	if err != nil {
		return out, fmt.Errorf("answered %T: %w", v, err)
	}
	return out, nil
}

// A Report describes a change of version of every live phone.
type Report struct {
	From, To string
	Phones   int           // phones moved
	Pause    time.Duration // from the first suspension to the last resumption
}

// Upgrade moves every live phone, and the phones that register from now
// on, to version, at one point: if one phone fails to change, every phone
// goes back to the version it had and Upgrade returns the failure (an
// [*fsm.UpgradeError] naming the phone). A version earlier in
// [WithVersions] than the current one is a downgrade.
func (s *Switch) Upgrade(ctx context.Context, version string) (Report, error) {
	to, err := s.index(version)
	if err != nil {
		return Report{}, err
	}
	s.upgrading.Lock()
	defer s.upgrading.Unlock()
	s.mu.Lock()
	from := s.current
	refs := make([]actor.Ref, 0, len(s.lines))
	for _, l := range s.lines {
		refs = append(refs, l.ref)
	}
	closed, detached := s.closed, s.handoff != nil
	s.mu.Unlock()
	rep := Report{From: s.cfg.versions[from].Version(), To: version}
	switch {
	case closed:
		return rep, ErrClosed
	case detached:
		return rep, ErrDetached
	case to == from:
		return rep, fmt.Errorf("%w: %s", ErrSameVersion, version)
	}
	var opts []fsm.ChangeOption
	if to < from {
		opts = append(opts, fsm.AsDowngrade())
	}

	start := time.Now()
	n, err := s.changeAll(ctx, refs, s.cfg.versions[to], opts)
	rep.Pause, rep.Phones = time.Since(start), n
	if err != nil {
		return rep, err
	}
	s.mu.Lock()
	s.previous, s.current = from, to
	s.mu.Unlock()
	if to > from {
		s.counters.upgrades.Add(1)
	} else {
		s.counters.downgrades.Add(1)
	}
	s.log.Info("exchange: phones moved", "from", rep.From, "to", rep.To, "phones", rep.Phones, "pause", rep.Pause)
	return rep, nil
}

// changeAll suspends every machine, changes each, reverts all if one
// fails, and resumes them all. Machines gone meanwhile are skipped.
func (s *Switch) changeAll(ctx context.Context, refs []actor.Ref, to fsm.Code, opts []fsm.ChangeOption) (int, error) {
	suspended := make([]actor.Ref, 0, len(refs))
	defer func() {
		rctx := context.WithoutCancel(ctx)
		for _, r := range suspended {
			if err := actor.Resume(rctx, r); err != nil && !errors.Is(err, actor.ErrNoProc) {
				s.log.Error("exchange: resume phone", "ref", r, "err", err)
			}
		}
	}()
	for _, r := range refs {
		err := actor.Suspend(ctx, r)
		if errors.Is(err, actor.ErrNoProc) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("exchange: suspend: %w", err)
		}
		suspended = append(suspended, r)
	}
	changed := make([]actor.Ref, 0, len(suspended))
	for _, r := range suspended {
		err := fsm.ChangeSuspended(ctx, r, to, opts...)
		if errors.Is(err, actor.ErrNoProc) {
			continue
		}
		if err != nil {
			rctx := context.WithoutCancel(ctx)
			for _, c := range changed {
				if rerr := fsm.Revert(rctx, c); rerr != nil && !errors.Is(rerr, actor.ErrNoProc) {
					err = errors.Join(err, rerr)
				}
			}
			return 0, err
		}
		changed = append(changed, r)
	}
	return len(changed), nil
}

// Rollback moves every phone back to the version it had before the last
// [Switch.Upgrade]. It returns ErrNoRollback if there was none.
func (s *Switch) Rollback(ctx context.Context) (Report, error) {
	s.mu.Lock()
	prev := s.previous
	s.mu.Unlock()
	if prev < 0 {
		return Report{}, ErrNoRollback
	}
	return s.Upgrade(ctx, s.cfg.versions[prev].Version())
}

// Status is a summary of the switch.
type Status struct {
	Version  string // new phones start on it, and every live phone runs it
	Previous string // what Rollback goes back to; "" for none
	Phones   int    // registered
	Conns    int    // open connections
}

// Status returns a summary of the switch.
func (s *Switch) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{Version: s.cfg.versions[s.current].Version(), Phones: len(s.lines), Conns: len(s.conns)}
	if s.previous >= 0 {
		st.Previous = s.cfg.versions[s.previous].Version()
	}
	return st
}

// Drain waits until every connection has closed (each phone hung up and
// went away), or ctx is done, and returns ctx's error then.
func (s *Switch) Drain(ctx context.Context) error {
	s.mu.Lock()
	if len(s.conns) == 0 {
		s.mu.Unlock()
		return nil
	}
	if s.idle == nil {
		s.idle = make(chan struct{})
	}
	idle := s.idle
	s.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("exchange: drain: %w", ctx.Err())
	}
}

// Close closes every connection (each hangs up, as a closed connection
// does), waits for their goroutines, and stops every machine (by shutting
// down the switch's System, unless [WithSystem] gave it).
func (s *Switch) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close("switch closed")
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("exchange: close: %w", ctx.Err())
	}
	if s.cfg.sys != nil {
		return err // the System is the caller's
	}
	return errors.Join(err, s.sys.Shutdown(ctx))
}
