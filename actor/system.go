package actor

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
)

// A System owns a set of actors: their scheduling, the name registry, the
// ID source and shutdown. There is no global state: two Systems in one
// process share nothing.
//
// A System must be made with [NewSystem] and must not be copied. Its
// methods are safe for concurrent use. Inside a [testing/synctest] bubble,
// make the System inside the bubble and shut it down before the bubble
// ends.
type System struct {
	logger     *slog.Logger
	deadLetter func(DeadLetter)
	maxIdle    int32

	ids atomic.Uint64

	mu      sync.Mutex
	head    *actor // oldest live actor; the list is in spawn order
	tail    *actor // newest live actor
	count   int
	names   map[string]*actor
	stopped bool

	idle    chan *actor // hands a runnable actor to a parked worker
	idleN   atomic.Int32
	quitted sync.Once // closes idle
	janitor sync.Once // starts releaseWorkers after a Shutdown cut short
	workers sync.WaitGroup

	calls sync.Pool // *call
	segs  sync.Pool // *segment
	ctxs  sync.Pool // *Context, for calls run on the caller's goroutine
}

// A SystemOption configures a [System].
type SystemOption func(*System)

// WithLogger sets the logger that reports abnormal exits and panics in
// terminate hooks. The default is [slog.Default] at the time of NewSystem.
func WithLogger(l *slog.Logger) SystemOption {
	return func(s *System) { s.logger = l }
}

// WithDeadLetters sets a hook called for every message that could not be
// delivered: sent to an actor that had exited, dropped by a full mailbox,
// or left in a mailbox when its actor exited. The hook runs on the goroutine
// that found the letter dead, so it must be quick and must not block;
// counting is its usual job. The default drops them silently.
func WithDeadLetters(hook func(DeadLetter)) SystemOption {
	return func(s *System) { s.deadLetter = hook }
}

// WithIdleWorkers sets how many parked goroutines the System keeps to run
// actors whose mailbox gets work; more than that exit when idle. The
// default is 4 × GOMAXPROCS.
func WithIdleWorkers(n int) SystemOption {
	return func(s *System) { s.maxIdle = int32(max(n, 0)) }
}

// A DeadLetter is a message that was not delivered, and why.
type DeadLetter struct {
	To      Ref   // the intended receiver
	Message any   // the message
	Reason  error // ErrNoProc, ErrMailboxFull, or the receiver's exit reason
}

// NewSystem returns a running System with no actors.
func NewSystem(opts ...SystemOption) *System {
	s := &System{
		logger:  slog.Default(),
		maxIdle: int32(4 * runtime.GOMAXPROCS(0)),
		idle:    make(chan *actor),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Logger returns the System's logger.
func (s *System) Logger() *slog.Logger { return s.logger }

// Count returns the number of live actors.
func (s *System) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// Spawn starts an actor running b and returns its Ref. If b implements
// [Initializer], Init runs before Spawn returns, on the caller's goroutine,
// and an error or panic from it is Spawn's error: the actor never runs, and
// the link made by [LinkTo] is dropped without an exit signal (the error is
// Spawn's to report). Links and monitors made during Init are told of the
// exit as for any other: a child that Init spawned linked to the actor goes
// down with it, unless it traps exits. Spawn starts
// no goroutine: the actor is scheduled when its mailbox gets work.
//
// Spawn returns ErrStopped once Shutdown has begun, and ErrNameTaken when
// [WithName] names a registered actor.
func (s *System) Spawn(b Behavior, opts ...SpawnOption) (Ref, error) {
	cfg := newSpawnConfig(opts)
	a := &actor{sys: s, id: s.ids.Add(1), b: b, flags: fScheduled}
	if cfg.link != nil {
		a.ext = &extras{parent: cfg.link}
	}
	if cfg.bound > 0 {
		a.mb = &mailbox{bound: cfg.bound, policy: cfg.policy}
	}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return Ref{}, ErrStopped
	}
	if cfg.name != "" {
		if _, taken := s.names[cfg.name]; taken {
			s.mu.Unlock()
			return Ref{}, ErrNameTaken
		}
		if s.names == nil {
			s.names = make(map[string]*actor)
		}
		s.names[cfg.name] = a
		a.extLocked().name = cfg.name
	}
	a.prev = s.tail
	if s.tail != nil {
		s.tail.next = a
	} else {
		s.head = a
	}
	s.tail = a
	s.count++
	s.mu.Unlock()

	if cfg.link != nil {
		link(a, cfg.link)
	}
	if in, ok := b.(Initializer); ok {
		c := &Context{a: a}
		if err := runInit(in, c); err != nil {
			a.abandon(err)
			return Ref{}, err
		}
		if c.stop != nil {
			a.abandon(c.stop)
			return Ref{}, c.stop
		}
	}
	a.mu.Lock()
	work := a.hasWorkLocked()
	if !work {
		a.flags &^= fScheduled
	}
	a.mu.Unlock()
	if work {
		s.schedule(a)
	}
	return Ref{a}, nil
}

// newSpawnConfig applies opts in order: a later option overrides what an
// earlier one set. Nothing is allocated.
func newSpawnConfig(opts []SpawnOption) spawnConfig {
	var cfg spawnConfig
	for i := range opts {
		o := &opts[i]
		if o.set&setName != 0 {
			cfg.name = o.cfg.name
		}
		if o.set&setMailbox != 0 {
			cfg.bound, cfg.policy = o.cfg.bound, o.cfg.policy
		}
		if o.set&setLink != 0 {
			cfg.link = o.cfg.link
		}
	}
	return cfg
}

func runInit(in Initializer, c *Context) (err error) {
	returned := false
	defer func() {
		if v := recover(); v != nil {
			err = newPanicError(v)
		} else if !returned {
			// runtime.Goexit: the actor is abandoned as if Init had
			// failed, and Spawn's goroutine goes on exiting.
			c.a.abandon(ErrGoexit)
		}
	}()
	err = in.Init(c)
	returned = true
	return err
}

// Register gives r a name that [System.Whereis] finds until the actor exits
// or the name is unregistered. It returns ErrNameTaken if the name belongs
// to a live actor, and ErrNoProc if r has exited.
func (s *System) Register(name string, r Ref) error {
	a := r.a
	if a == nil || a.sys != s {
		return ErrNoProc
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.flags&fDead != 0 {
		return ErrNoProc
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, taken := s.names[name]; taken {
		return ErrNameTaken
	}
	if s.names == nil {
		s.names = make(map[string]*actor)
	}
	e := a.extLocked()
	if e.name != "" {
		delete(s.names, e.name)
	}
	s.names[name] = a
	e.name = name
	return nil
}

// Unregister removes a name. It does nothing if the name is not registered.
func (s *System) Unregister(name string) {
	s.mu.Lock()
	a := s.names[name]
	delete(s.names, name)
	s.mu.Unlock()
	if a != nil {
		a.mu.Lock()
		if a.ext != nil && a.ext.name == name {
			a.ext.name = ""
		}
		a.mu.Unlock()
	}
}

// Whereis returns the actor registered under name.
func (s *System) Whereis(name string) (Ref, bool) {
	s.mu.Lock()
	a, ok := s.names[name]
	s.mu.Unlock()
	return Ref{a}, ok
}

// Shutdown stops every actor with reason [Shutdown], then stops the
// System's goroutines. It stops the roots in the reverse order of their
// spawning, one at a time, waiting for each to finish its terminate hook:
// a root is an actor that was not spawned with [LinkTo], or whose parent
// (the actor it was linked to at its spawn) has exited. An actor with a
// live parent is left to its parent, which takes it down when it exits:
// through the link, or in its own order (a supervisor stops its children
// in reverse start order, each within its budget), so that a tree goes
// down from its root, as the tree decides. An actor that outlives its
// parent is a root in turn.
//
// New spawns fail with ErrStopped from the moment Shutdown begins. If ctx
// ends first, the actors not yet stopped are killed (each still finishes
// the message it is handling) and Shutdown returns ctx's error; the
// System's own goroutines end once those actors have exited. Shutdown may
// be called more than once.
func (s *System) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	for {
		a := s.newestRoot()
		if a == nil {
			break
		}
		if err := stopActor(ctx, a, Shutdown); err != nil && !errors.Is(err, ErrNoProc) {
			s.killAll()
			// The System's goroutines are let go once the killed actors
			// have finished the messages they are handling, whether or not
			// Shutdown is called again.
			s.janitor.Do(func() { go s.releaseWorkers() })
			return err
		}
	}
	s.releaseWorkers()
	return nil
}

// releaseWorkers waits until every actor has exited, then lets every
// parked worker go and waits for the workers to end. Once every actor has
// exited no schedule can come any more (an actor is scheduled before it
// runs, and exits only by running), so closing idle is safe.
func (s *System) releaseWorkers() {
	for {
		s.mu.Lock()
		a := s.head
		s.mu.Unlock()
		if a == nil {
			break
		}
		_ = a.wait(context.Background())
	}
	s.quitted.Do(func() { close(s.idle) })
	s.workers.Wait()
}

// newestRoot returns the live root spawned last (see Shutdown), or nil when
// no actor is left. It walks the spawn-ordered list from its newest end;
// the oldest live actor is always a root (a parent is older than its
// child), so the walk finds one unless actors exit under it, and then it
// starts again from the newest.
func (s *System) newestRoot() *actor {
	s.mu.Lock()
	a := s.tail
	s.mu.Unlock()
	for a != nil {
		if a.isRoot() {
			return a
		}
		s.mu.Lock()
		switch {
		case a.prev != nil:
			a = a.prev
		case s.head == a:
			// Cannot happen (the oldest live actor has no live parent of
			// this System); if it did, stopping it still makes progress.
			s.mu.Unlock()
			return a
		default:
			a = s.tail // a left the list meanwhile
		}
		s.mu.Unlock()
	}
	return nil
}

// isRoot reports whether a has no live parent in its System.
func (a *actor) isRoot() bool {
	a.mu.Lock()
	var p *actor
	if a.ext != nil {
		p = a.ext.parent
	}
	a.mu.Unlock()
	if p == nil || p.sys != a.sys {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.flags&fDead != 0
}

func (s *System) killAll() {
	s.mu.Lock()
	var all []*actor
	for a := s.head; a != nil; a = a.next {
		all = append(all, a)
	}
	s.mu.Unlock()
	for _, a := range all {
		_ = a.pushSys(sysMsg{kind: sysKill})
	}
}

// remove takes a dead actor out of the spawn-ordered list and the registry.
func (s *System) remove(a *actor, name string) {
	s.mu.Lock()
	if a.prev != nil {
		a.prev.next = a.next
	} else if s.head == a {
		s.head = a.next
	}
	if a.next != nil {
		a.next.prev = a.prev
	} else if s.tail == a {
		s.tail = a.prev
	}
	a.prev, a.next = nil, nil
	s.count--
	if name != "" && s.names[name] == a {
		delete(s.names, name)
	}
	s.mu.Unlock()
}

func (s *System) dead(to *actor, msg any, reason error) {
	if s.deadLetter != nil {
		s.deadLetter(DeadLetter{To: Ref{to}, Message: msg, Reason: reason})
	}
}

// schedule puts a runnable actor on a goroutine: a parked worker if one is
// waiting, a new one otherwise. The caller has set fScheduled.
func (s *System) schedule(a *actor) {
	select {
	case s.idle <- a:
	default:
		s.workers.Add(1)
		go s.worker(a)
	}
}

// worker runs actors until it has been idle while enough others are, or
// the System has shut down (idle closed). It parks on idle alone, not in a
// select: a plain receive costs less to park and to wake, and a worker
// parks once per turn.
func (s *System) worker(a *actor) {
	defer s.workers.Done()
	c := &Context{worker: true}
	for {
		c.a = a
		a.run(c)
		c.a = nil
		if s.idleN.Add(1) > s.maxIdle {
			s.idleN.Add(-1)
			return
		}
		a = <-s.idle
		s.idleN.Add(-1)
		if a == nil {
			return
		}
	}
}

func (s *System) getCall() *call {
	if c, ok := s.calls.Get().(*call); ok {
		return c
	}
	return &call{ch: make(chan reply, 1)}
}

func (s *System) putCall(c *call, gen uint64) {
	c.msg = nil
	c.state.Store((gen + 1) << 1)
	s.calls.Put(c)
}

func (s *System) getContext() *Context {
	if c, ok := s.ctxs.Get().(*Context); ok {
		return c
	}
	return new(Context)
}

func (s *System) putContext(c *Context) {
	*c = Context{}
	s.ctxs.Put(c)
}
