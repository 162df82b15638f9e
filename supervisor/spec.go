package supervisor

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/hotline-go/hotline/actor"
)

// A ChildSpec says how to start one child and what to do when it exits.
// Only ID and Start are required; the zero values of the other fields are
// OTP's defaults: a permanent worker with a shutdown budget of five
// seconds (a supervisor child: Infinity).
type ChildSpec struct {
	// ID names the child among its supervisor's children (required, and
	// unique, except in a simple-one-for-one supervisor where it names the
	// one spec of all its children).
	ID string

	// Start starts the child and returns its Ref. It runs on the
	// supervisor's goroutine, so the child's Init runs there too: a Start
	// must not call its own supervisor, which is busy running it. The
	// child should be linked to sc.Supervisor() from its spawning
	// ([StartContext.Spawn] does it); the supervisor links to it anyway
	// when Start returns, so a child that died in between is seen as an
	// exit (with reason actor.ErrNoProc) and restarted. Start returns
	// (zero Ref, nil) to decline, as OTP's ignore: the child is not
	// started, its spec is kept (a temporary spec is dropped). A panic in
	// Start is a start error.
	Start func(sc StartContext) (actor.Ref, error)

	// Restart says when the child is restarted. Default Permanent.
	Restart Restart

	// Shutdown is how long the child is given to stop when its supervisor
	// stops it: [BrutalKill], a positive duration, or [Infinity]. Zero means
	// the default: [DefaultShutdown] for a worker, Infinity for a subtree.
	Shutdown time.Duration

	// Kind says whether the child is a worker or a supervisor of this
	// package (a subtree). Default Worker. [Walk] descends into subtrees.
	Kind Kind
}

// Restart says when a child that exited is started again.
type Restart uint8

const (
	// Permanent children are always restarted. The default.
	Permanent Restart = iota
	// Transient children are restarted only after an abnormal exit: a
	// reason other than actor.Normal and actor.Shutdown (or an error that
	// wraps Shutdown, as OTP's {shutdown, Term}).
	Transient
	// Temporary children are never restarted, and their spec is dropped
	// when they exit.
	Temporary
)

func (r Restart) String() string {
	switch r {
	case Permanent:
		return "permanent"
	case Transient:
		return "transient"
	case Temporary:
		return "temporary"
	}
	return fmt.Sprintf("Restart(%d)", uint8(r))
}

// Kind is what a child is: a worker, or a subtree (a supervisor of this
// package, whose own children [Walk] visits).
type Kind uint8

const (
	// Worker is any actor that is not a supervisor. The default.
	Worker Kind = iota
	// Subtree is a supervisor started with [Start]; see [SubtreeSpec].
	Subtree
)

func (k Kind) String() string {
	switch k {
	case Worker:
		return "worker"
	case Subtree:
		return "subtree"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Shutdown budgets for [ChildSpec.Shutdown].
const (
	// BrutalKill stops a child with actor.Kill, without its terminate
	// hook. Go cannot preempt a handler: the kill takes effect when the
	// child's current handler returns.
	BrutalKill time.Duration = -1

	// Infinity waits for the child to stop, however long it takes: the
	// default for subtrees, which stop their own children first.
	Infinity time.Duration = math.MaxInt64

	// DefaultShutdown is the budget of a worker whose spec leaves Shutdown
	// zero: five seconds, as in OTP.
	DefaultShutdown = 5 * time.Second
)

// budget is the spec's shutdown budget, with the default filled in.
func (cs *ChildSpec) budget() time.Duration {
	switch {
	case cs.Shutdown != 0:
		return cs.Shutdown
	case cs.Kind == Subtree:
		return Infinity
	default:
		return DefaultShutdown
	}
}

func (cs *ChildSpec) validate() error {
	switch {
	case cs.Start == nil:
		return fmt.Errorf("%w: child %q has no Start function", ErrBadSpec, cs.ID)
	case cs.Restart > Temporary:
		return fmt.Errorf("%w: child %q: unknown restart type %v", ErrBadSpec, cs.ID, cs.Restart)
	case cs.Kind > Subtree:
		return fmt.Errorf("%w: child %q: unknown kind %v", ErrBadSpec, cs.ID, cs.Kind)
	case cs.Shutdown < 0 && cs.Shutdown != BrutalKill:
		return fmt.Errorf("%w: child %q: negative shutdown budget %v (BrutalKill is -1)", ErrBadSpec, cs.ID, cs.Shutdown)
	}
	return nil
}

// validateSpecs checks the specs given to Start.
func validateSpecs(strategy Strategy, specs []ChildSpec) error {
	if strategy > SimpleOneForOne {
		return fmt.Errorf("%w: unknown strategy %v", ErrBadSpec, strategy)
	}
	if strategy == SimpleOneForOne && len(specs) != 1 {
		return fmt.Errorf("%w: a simple-one-for-one supervisor takes exactly one spec, not %d", ErrBadSpec, len(specs))
	}
	seen := make(map[string]bool, len(specs))
	for i := range specs {
		cs := &specs[i]
		if err := cs.validate(); err != nil {
			return err
		}
		if strategy == SimpleOneForOne {
			continue
		}
		if cs.ID == "" {
			return fmt.Errorf("%w: child %d has no ID", ErrBadSpec, i)
		}
		if seen[cs.ID] {
			return fmt.Errorf("%w: duplicate child ID %q", ErrBadSpec, cs.ID)
		}
		seen[cs.ID] = true
	}
	return nil
}

// A StartContext is what a [ChildSpec]'s Start function gets from the
// supervisor that runs it. It is made by the supervisor and is valid only
// during the call.
type StartContext struct {
	sys    *actor.System
	sup    actor.Ref
	id     string
	args   []any
	link   []actor.SpawnOption // LinkTo(sup), made once per supervisor
	linked *actor.Ref          // where Spawn records the child it linked to sup
}

// System returns the supervisor's System.
func (sc StartContext) System() *actor.System { return sc.sys }

// Supervisor returns the Ref of the supervisor starting the child.
func (sc StartContext) Supervisor() actor.Ref { return sc.sup }

// ID returns the ID of the spec being started.
func (sc StartContext) ID() string { return sc.id }

// Args returns the arguments given to [StartChild] for a child of a
// simple-one-for-one supervisor; nil otherwise.
func (sc StartContext) Args() []any { return sc.args }

// Spawn spawns b linked to the supervisor, with opts: the usual body of a
// worker's Start function.
func (sc StartContext) Spawn(b actor.Behavior, opts ...actor.SpawnOption) (actor.Ref, error) {
	link := sc.link
	if link == nil {
		link = []actor.SpawnOption{actor.LinkTo(sc.sup)}
	}
	var ref actor.Ref
	var err error
	if len(opts) == 0 {
		// The usual case: the supervisor's own option, with nothing to
		// allocate at each start.
		ref, err = sc.sys.Spawn(b, link...)
	} else {
		ref, err = sc.sys.Spawn(b, append(slices.Clip(opts), link...)...)
	}
	if err == nil && sc.linked != nil {
		// LinkTo comes last: whatever opts say, ref is linked to sup.
		*sc.linked = ref
	}
	return ref, err
}

// SubtreeSpec returns the spec of a child that is itself a supervisor,
// started with [Start] and linked to its parent ([LinkTo]): a permanent
// subtree with an Infinity shutdown budget, as OTP's defaults for a
// supervisor child. Change the returned spec's fields to differ.
func SubtreeSpec(id string, strategy Strategy, specs []ChildSpec, opts ...Option) ChildSpec {
	return ChildSpec{
		ID:   id,
		Kind: Subtree,
		Start: func(sc StartContext) (actor.Ref, error) {
			return Start(sc.System(), strategy, specs, append(slices.Clip(opts), LinkTo(sc.Supervisor()))...)
		},
	}
}
