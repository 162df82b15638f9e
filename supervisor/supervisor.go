package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/hotline-go/hotline/actor"
)

// Strategy is what a supervisor does when a child exits and is to be
// restarted.
type Strategy uint8

const (
	// OneForOne restarts the child that exited, and only it.
	OneForOne Strategy = iota
	// OneForAll stops the other children (in reverse start order) and
	// starts them all again (in start order).
	OneForAll
	// RestForOne stops the children started after the one that exited (in
	// reverse start order) and starts it and them again (in start order).
	RestForOne
	// SimpleOneForOne is OneForOne for many children of one spec, started
	// at run time with [StartChild] and stopped all at once, in parallel.
	SimpleOneForOne
)

func (s Strategy) String() string {
	switch s {
	case OneForOne:
		return "one-for-one"
	case OneForAll:
		return "one-for-all"
	case RestForOne:
		return "rest-for-one"
	case SimpleOneForOne:
		return "simple-one-for-one"
	}
	return fmt.Sprintf("Strategy(%d)", uint8(s))
}

// Start starts a supervisor in sys and, before it returns, its children in
// the order of specs (none for SimpleOneForOne, whose one spec is the
// template of the children that [StartChild] starts). If a child fails to
// start, the children already started are stopped in reverse order and
// Start returns a *[StartError] naming the child; the supervisor never
// runs. Start returns an error wrapping [ErrBadSpec] for specs that cannot
// work, and actor.ErrStopped once sys is shutting down.
//
// The supervisor is an actor: it traps exits, is linked to every child,
// and can be linked to ([LinkTo]), monitored and stopped like any other.
// Stopping it (actor.Stop, or its parent's exit) stops its children in
// reverse start order, each within its shutdown budget.
func Start(sys *actor.System, strategy Strategy, specs []ChildSpec, opts ...Option) (actor.Ref, error) {
	if err := validateSpecs(strategy, specs); err != nil {
		return actor.Ref{}, err
	}
	s := newSupervisor(strategy, specs, newConfig(opts))
	var sopts []actor.SpawnOption
	if s.cfg.name != "" {
		sopts = append(sopts, actor.WithName(s.cfg.name))
	}
	if !s.cfg.parent.IsZero() {
		sopts = append(sopts, actor.LinkTo(s.cfg.parent))
	}
	return sys.Spawn(s, sopts...)
}

// supervisor is the Behavior of a supervisor actor. All its state belongs
// to the actor's goroutine.
type supervisor struct {
	strategy Strategy
	cfg      config
	parent   actor.Ref
	self     actor.Ref
	sys      *actor.System

	children []*child             // the static strategies': in start order
	template ChildSpec            // SimpleOneForOne's one spec
	dynamic  map[*child]bool      // SimpleOneForOne's children
	seq      uint64               // SimpleOneForOne: start order, for listing
	byRef    map[actor.Ref]*child // SimpleOneForOne's running children; see running
	link     []actor.SpawnOption  // LinkTo(self), for StartContext.Spawn
	linked   actor.Ref            // the last child StartContext.Spawn linked to the supervisor
	epoch    time.Time            // when the supervisor started: the origin of restarts
	restarts window               // the latest restarts, for the intensity
}

// child is one child slot: its spec, and its process when it has one.
type child struct {
	spec    ChildSpec
	args    []any // SimpleOneForOne: StartChild's arguments
	seq     uint64
	ref     actor.Ref // zero unless status is Running
	status  Status
	started time.Duration // when the running process started, since epoch (with a backoff)
	fails   int           // consecutive restarts, for the backoff
	timer   *actor.Timer  // a pending delayed restart
	gen     uint64        // which restartDue message is current
}

// restartDue is the message a supervisor sends itself to restart a child
// later: after a backoff delay, or to try again after a failed start.
type restartDue struct {
	c   *child
	gen uint64
}

// adopt tells a subtree its parent, when its Start function did not pass
// [LinkTo]: a parent that exits, killed, must take its subtrees with it.
type adopt struct{ parent actor.Ref }

func newSupervisor(strategy Strategy, specs []ChildSpec, cfg config) *supervisor {
	s := &supervisor{
		strategy: strategy,
		cfg:      cfg,
		parent:   cfg.parent,
	}
	if strategy == SimpleOneForOne {
		s.template = specs[0]
		s.dynamic = make(map[*child]bool)
		s.byRef = make(map[actor.Ref]*child)
		return s
	}
	s.children = make([]*child, len(specs))
	for i, cs := range specs {
		s.children[i] = &child{spec: cs}
	}
	return s
}

// Init starts the children in order; if one fails, it stops those started
// and fails the supervisor's start.
func (s *supervisor) Init(c *actor.Context) error {
	c.TrapExits(true)
	s.self, s.sys, s.epoch = c.Self(), c.System(), time.Now()
	s.link = []actor.SpawnOption{actor.LinkTo(s.self)}
	for _, ch := range slices.Clone(s.children) {
		if err := s.startChild(c, ch); err != nil {
			s.stopAll(c)
			return &StartError{Child: ch.spec.ID, Err: err}
		}
	}
	return nil
}

// Terminate stops the children that are still running, in reverse start
// order; it runs when the supervisor is stopped with actor.Stop (or by
// System.Shutdown), after a handler decided to exit, and not after a kill.
func (s *supervisor) Terminate(c *actor.Context, _ error) {
	s.stopAll(c)
}

func (s *supervisor) Receive(c *actor.Context, msg any) {
	switch m := msg.(type) {
	case actor.Exit:
		s.onExit(c, m)
	case restartDue:
		if m.gen == m.c.gen && m.c.status == Restarting && s.holds(m.c) {
			m.c.timer = nil
			s.startGroup(c, m.c)
		}
	case adopt:
		s.parent = m.parent
	case request:
		s.handle(c, m)
	default:
		c.Logger().Warn("supervisor: unexpected message", "type", fmt.Sprintf("%T", msg))
	}
}

// onExit handles an exit signal: a child's, its parent's, or another's.
func (s *supervisor) onExit(c *actor.Context, m actor.Exit) {
	ch := s.running(m.From)
	if ch == nil {
		// The parent's exit, or one from outside any actor (SendExit) that
		// is not Normal, ends the supervisor; other exit signals come from
		// children already stopped, or from actors that linked to the
		// supervisor on their own, and are ignored, as in OTP.
		if (!s.parent.IsZero() && m.From == s.parent) || (m.From.IsZero() && !actor.IsNormal(m.Reason)) {
			s.stopAll(c)
			c.Stop(m.Reason)
		}
		return
	}
	now := time.Since(s.epoch) // the monotonic clock alone
	s.untrack(ch)
	ch.ref, ch.status = actor.Ref{}, Stopped
	if s.cfg.backoffMin > 0 && now-ch.started >= s.cfg.backoffMax {
		ch.fails = 0
	}
	if !shouldRestart(ch.spec.Restart, m.Reason) {
		if ch.spec.Restart == Temporary || s.strategy == SimpleOneForOne {
			s.remove(ch)
		}
		return
	}
	s.restart(c, ch, m.Reason, now, false)
}

// restart counts a restart of ch, whose process exited with reason or
// failed to start (retry), and stops the supervisor if that is one too
// many. Otherwise it stops the rest of ch's group and starts the group
// again: at once after an exit without a backoff, or later, by a message
// to itself, after a backoff delay or a failed start (as OTP's
// try_again_restart, to let other requests in between).
func (s *supervisor) restart(c *actor.Context, ch *child, reason error, now time.Duration, retry bool) {
	if !s.restarts.add(now, s.cfg.intensity, s.cfg.period) {
		err := &IntensityError{Child: ch.spec.ID, Restarts: s.cfg.intensity + 1, Period: s.cfg.period, Last: reason}
		c.Logger().Error("supervisor: too many restarts; stopping the children and exiting",
			"child", ch.spec.ID, "restarts", err.Restarts, "period", err.Period, "reason", reason)
		s.stopAll(c)
		c.Stop(err)
		return
	}
	s.stopGroup(c, ch)
	ch.status = Restarting
	ch.fails++
	ch.gen++
	var d time.Duration
	if s.cfg.backoffMin > 0 {
		u := 0.0
		if s.cfg.jitter > 0 {
			u = s.cfg.random()
		}
		d = backoffDelay(s.cfg.backoffMin, s.cfg.backoffMax, ch.fails, s.cfg.jitter, u)
	}
	if l := c.System().Logger(); l.Enabled(context.Background(), slog.LevelInfo) {
		l.Info("supervisor: restarting child", "actor", c.Self(), "child", ch.spec.ID, "reason", reason, "delay", d)
	}
	switch {
	case d > 0:
		ch.timer = c.SendAfter(c.Self(), d, restartDue{ch, ch.gen})
	case retry:
		// Sending to itself cannot fail while the supervisor runs.
		_ = actor.Send(c.Self(), restartDue{ch, ch.gen})
	default:
		s.startGroup(c, ch)
	}
}

// startGroup starts ch and the other children of its group that are not
// running, in start order. A child that fails to start is restarted in
// turn (and counted), which starts its group again.
func (s *supervisor) startGroup(c *actor.Context, ch *child) {
	members := []*child{ch}
	if s.strategy == OneForAll || s.strategy == RestForOne {
		lo, hi := group(s.strategy, len(s.children), slices.Index(s.children, ch))
		members = slices.Clone(s.children[lo:hi])
	}
	for _, m := range members {
		if m.status == Running || !s.holds(m) {
			continue
		}
		if m.timer != nil {
			m.timer.Stop()
			m.timer = nil
		}
		m.gen++
		err := s.startChild(c, m)
		if err == nil {
			continue
		}
		if errors.Is(err, actor.ErrStopped) {
			// The System is shutting down: nothing to restart into.
			s.stopAll(c)
			c.Stop(actor.Shutdown)
			return
		}
		err = &StartError{Child: m.spec.ID, Err: err}
		c.Logger().Error("supervisor: child failed to restart", "child", m.spec.ID, "error", err)
		s.restart(c, m, err, time.Since(s.epoch), true)
		return
	}
}

// startChild runs ch's Start function and records the child it started.
// A declined start leaves ch stopped; a temporary ch is dropped, and so is
// a simple-one-for-one child, which has no Ref left to name it by.
func (s *supervisor) startChild(c *actor.Context, ch *child) error {
	s.linked = actor.Ref{}
	ref, err := runStart(ch.spec.Start, StartContext{sys: s.sys, sup: s.self, id: ch.spec.ID, args: ch.args, link: s.link, linked: &s.linked})
	if err != nil {
		return err
	}
	if ref.IsZero() {
		ch.status = Stopped
		if ch.spec.Restart == Temporary || s.strategy == SimpleOneForOne {
			s.remove(ch)
		}
		return nil
	}
	if ref != s.linked {
		// Linked at its spawn already when StartContext.Spawn made it.
		c.Link(ref)
	}
	ch.ref, ch.status = ref, Running
	if s.cfg.backoffMin > 0 {
		ch.started = time.Since(s.epoch) // for the backoff's reset only
	}
	s.track(ch)
	if ch.spec.Kind == Subtree {
		// A child that is already gone has its exit signal on its way.
		_ = actor.Send(ref, adopt{s.self})
	}
	return nil
}

func runStart(start func(StartContext) (actor.Ref, error), sc StartContext) (ref actor.Ref, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = newPanicError(v)
		}
	}()
	return start(sc)
}

// running returns the child whose process is ref, or nil. A static
// supervisor's children are few: it looks through them, which costs less
// than keeping a map up to date at every restart. A simple-one-for-one
// supervisor may have many, and keeps a map.
func (s *supervisor) running(ref actor.Ref) *child {
	if s.byRef != nil {
		return s.byRef[ref]
	}
	for _, ch := range s.children {
		if ch.status == Running && ch.ref == ref {
			return ch
		}
	}
	return nil
}

// track records ch, which has just started, for running.
func (s *supervisor) track(ch *child) {
	if s.byRef != nil {
		s.byRef[ch.ref] = ch
	}
}

// untrack forgets ch's process, which has exited or is being stopped.
func (s *supervisor) untrack(ch *child) {
	if s.byRef != nil {
		delete(s.byRef, ch.ref)
	}
}

// holds reports whether ch is still one of the supervisor's children.
func (s *supervisor) holds(ch *child) bool {
	if s.strategy == SimpleOneForOne {
		return s.dynamic[ch]
	}
	return slices.Contains(s.children, ch)
}

// remove drops ch and its spec.
func (s *supervisor) remove(ch *child) {
	if ch.timer != nil {
		ch.timer.Stop()
		ch.timer = nil
	}
	ch.status = Stopped
	ch.gen++
	if s.strategy == SimpleOneForOne {
		delete(s.dynamic, ch)
		return
	}
	if i := slices.Index(s.children, ch); i >= 0 {
		s.children = slices.Delete(s.children, i, i+1)
	}
}
