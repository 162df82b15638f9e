package exchange

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/examples/phoneswitch/phone"
	"github.com/hotline-go/hotline/examples/phoneswitch/protocol"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/plugin"
	"github.com/hotline-go/hotline/supervisor"
	"github.com/hotline-go/hotline/upgrade"
)

// Errors of [New] and of the switch's calls.
var (
	ErrNoRelease   = errors.New("exchange: no release handler")
	ErrClosed      = errors.New("exchange: switch closed")
	ErrNumberTaken = errors.New("exchange: number taken")
)

// A Switch serves phone lines. Create one with [New]; it is safe for
// concurrent use; [Switch.Close] ends it.
type Switch struct {
	cfg config
	log *slog.Logger
	sys *actor.System
	rh  *upgrade.ReleaseHandler
	sup actor.Ref // the phones' simple-one-for-one supervisor

	mu      sync.Mutex
	lines   map[string]*line
	conns   map[*conn]struct{}
	idle    chan struct{} // closed when conns becomes empty
	closed  bool
	round   []*conn // paused for a binary restart (binary.go)
	connSeq int     // names connections in the upgrade.Handoff
	// The lines a binary restart restored wait for Ready (binary.go):
	// their readers and writers wait for readyC, and Ready hangs up the
	// machines in hangUps (restored without their line).
	readyC    chan struct{}
	ready     bool
	hangUps   []string
	hangingUp []chan struct{} // each closed when a goroutine of hang-ups has ended
	wg        sync.WaitGroup
	counters  counters
}

// line is a registered number: its machine and its connection. A line
// whose ref is zero is being registered: its machine is starting.
type line struct {
	ref  actor.Ref
	c    *conn
	peer string // the last phone its machine signalled; guarded by Switch.mu
}

// startPhone is the argument of the phones supervisor's StartChild: the
// number, and the image to restore its machine from (a phone handed
// over by a binary restart), if any.
type startPhone struct {
	number string
	img    *fsm.Image
}

// New returns a switch whose phones run in sys, each started by rh (which
// must run machines in sys, and know the versions of the machine
// [phone.Name]) under a simple-one-for-one supervisor of the switch's own.
// It returns ErrNoRelease for a nil rh, and the supervisor's start error.
func New(sys *actor.System, rh *upgrade.ReleaseHandler, opts ...Option) (*Switch, error) {
	cfg := config{
		logger:       slog.Default(),
		now:          time.Now,
		writeQueue:   DefaultWriteQueue,
		stallTimeout: DefaultStallTimeout,
		callTimeout:  DefaultCallTimeout,
		startTimeout: DefaultStartTimeout,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if rh == nil {
		return nil, ErrNoRelease
	}
	s := &Switch{cfg: cfg, log: cfg.logger, sys: sys, rh: rh, lines: map[string]*line{}, conns: map[*conn]struct{}{}, readyC: make(chan struct{})}
	spec := supervisor.ChildSpec{ID: "phone", Restart: supervisor.Temporary, Start: s.startChild}
	sup, err := supervisor.Start(sys, supervisor.SimpleOneForOne, []supervisor.ChildSpec{spec}, supervisor.WithName("phones"))
	if err != nil {
		return nil, fmt.Errorf("exchange: phones supervisor: %w", err)
	}
	s.sup = sup
	return s, nil
}

// startChild is the Start of the phones supervisor's spec: the release
// handler starts (or restores) the phone's machine, linked to the
// supervisor, on the version new machines start on.
func (s *Switch) startChild(sc supervisor.StartContext) (actor.Ref, error) {
	args := sc.Args()
	if len(args) != 1 {
		return actor.Ref{}, fmt.Errorf("exchange: start phone: want 1 argument, got %d", len(args))
	}
	sp, ok := args[0].(startPhone)
	if !ok {
		return actor.Ref{}, fmt.Errorf("exchange: start phone: argument %T", args[0])
	}
	// The release handler makes a start wait while an upgrade cuts (and
	// during a rolling rollout): bounded, on the supervisor's goroutine.
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.startTimeout)
	defer cancel()
	opts := []fsm.StartOption{fsm.WithID(sp.number), fsm.WithSpawnOptions(actor.LinkTo(sc.Supervisor()))}
	if sp.img != nil {
		return s.rh.Restore(ctx, sp.img.Snapshot, append(opts, fsm.FromImage(*sp.img))...)
	}
	return s.rh.Start(ctx, phone.Name, opts...)
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

// register starts a machine for number on c, under the phones
// supervisor. The number is taken while its machine starts, outside the
// switch's lock: a start may wait for an upgrade in progress.
func (s *Switch) register(ctx context.Context, c *conn, number string) (actor.Ref, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return actor.Ref{}, ErrClosed
	}
	if _, ok := s.lines[number]; ok {
		s.mu.Unlock()
		return actor.Ref{}, fmt.Errorf("%w: %s", ErrNumberTaken, number)
	}
	l := &line{c: c}
	s.lines[number] = l
	s.mu.Unlock()
	ref, err := supervisor.StartChild(ctx, s.sup, startPhone{number: number})
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && s.closed {
		err = ErrClosed
	}
	if err == nil && ref.IsZero() {
		err = errors.New("declined")
	}
	if err == nil && s.cfg.handoff != nil {
		// Under s.mu: the number is managed exactly while its machine is
		// in s.lines.
		err = s.cfg.handoff.Manage(number, ref)
	}
	if err != nil {
		delete(s.lines, number)
		if !ref.IsZero() {
			err = errors.Join(err, s.stopPhone(ctx, ref))
		}
		return actor.Ref{}, fmt.Errorf("exchange: start phone %s: %w", number, err)
	}
	l.ref = ref
	return ref, nil
}

// stopPhone ends a phone's machine: normally, since a phone that goes
// away is the normal end of its machine (a canary that hangs up has not
// failed); its supervisor, whose children are temporary, forgets it. One
// that has already ended is no error.
func (s *Switch) stopPhone(ctx context.Context, ref actor.Ref) error {
	err := actor.Stop(ctx, ref, actor.Normal)
	if err == nil || errors.Is(err, actor.ErrNoProc) {
		return nil
	}
	return err
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

// unregister stops the machine of number, registered by c (or by nobody:
// a machine restored without its line).
func (s *Switch) unregister(ctx context.Context, c *conn, number string) {
	s.mu.Lock()
	l, ok := s.lines[number]
	mine := ok && l.c == c && !l.ref.IsZero()
	if mine {
		delete(s.lines, number)
		if s.cfg.handoff != nil {
			s.cfg.handoff.Unmanage(number)
		}
	}
	s.mu.Unlock()
	if !mine {
		return
	}
	if err := s.stopPhone(ctx, l.ref); err != nil {
		s.log.Warn("exchange: stop phone", "number", number, "err", err)
	}
}

// lookup returns the line of a number whose machine runs.
func (s *Switch) lookup(number string) (*line, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.lines[number]
	if !ok || l.ref.IsZero() {
		return nil, false
	}
	return l, true
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

// Status is a summary of the switch.
type Status struct {
	Version string // new phones start on it (the release handler's current version)
	Phones  int    // registered
	Conns   int    // open connections
}

// Status returns a summary of the switch.
func (s *Switch) Status() Status {
	var st Status
	for _, ms := range s.rh.Status() {
		if ms.Machine == phone.Name {
			st.Version = ms.Current
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Phones, st.Conns = len(s.lines), len(s.conns)
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
// does), waits for their goroutines, and stops the phones supervisor and
// with it every phone's machine. The System and the release handler are
// the caller's.
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
	if serr := actor.Stop(ctx, s.sup, actor.Shutdown); serr != nil && !errors.Is(serr, actor.ErrNoProc) {
		err = errors.Join(err, fmt.Errorf("exchange: stop the phones: %w", serr))
	}
	return err
}
