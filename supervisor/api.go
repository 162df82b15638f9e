package supervisor

import (
	"context"
	"errors"
	"fmt"

	"github.com/hotline-go/hotline/actor"
)

// Status is the state of a child slot.
type Status uint8

const (
	// Stopped: the child has no process (it exited and was not restarted,
	// was terminated with [TerminateChild], or declined to start).
	Stopped Status = iota
	// Running: the child has a live process, its Ref.
	Running
	// Restarting: the child exited and waits for its restart (a backoff
	// delay, or another try after a failed start).
	Restarting
)

func (s Status) String() string {
	switch s {
	case Stopped:
		return "stopped"
	case Running:
		return "running"
	case Restarting:
		return "restarting"
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// Child describes one child of a supervisor, as [WhichChildren] and [Walk]
// report it.
type Child struct {
	ID         string    // its spec's ID
	Ref        actor.Ref // its process; zero unless Status is Running
	Status     Status
	Spec       ChildSpec // its spec
	Args       []any     // for a simple-one-for-one child, StartChild's args
	Supervisor actor.Ref // the supervisor it belongs to
}

// Counts are a supervisor's children counted as OTP's count_children does.
type Counts struct {
	Specs       int // child specs (1 for a simple-one-for-one supervisor)
	Active      int // children with a running process
	Supervisors int // children of kind Subtree, running or not
	Workers     int // children of kind Worker, running or not
}

// ChildKey names a child for [TerminateChild]: by its spec's ID, or by its
// Ref (the only way for a simple-one-for-one supervisor's children).
type ChildKey interface {
	string | actor.Ref
}

// call makes a request of the supervisor and converts the reply.
func call[T any](ctx context.Context, sup actor.Ref, r request) (T, error) {
	var zero T
	v, err := actor.Call(ctx, sup, r)
	if err != nil {
		return zero, err
	}
	if v == nil {
		return zero, nil
	}
	t, ok := v.(T)
	if !ok {
		return zero, fmt.Errorf("supervisor: %v answered %T: not a supervisor", sup, v)
	}
	return t, nil
}

// StartChild starts a child of a simple-one-for-one supervisor from its
// one spec, with args (the spec's Start function reads them with
// [StartContext.Args]; OTP appends them to the spec's arguments). It
// returns the child's Ref (zero if the Start function declined), a
// *[StartError], or an error wrapping [ErrStrategy] for other supervisors.
func StartChild(ctx context.Context, sup actor.Ref, args ...any) (actor.Ref, error) {
	return call[actor.Ref](ctx, sup, startChildReq{args: args})
}

// AddChild adds spec to a supervisor's children, after the others, and
// starts it (OTP's start_child with a child spec). If it fails to start,
// the spec is not kept and AddChild returns a *[StartError]. It returns
// an error wrapping [ErrRunning] or [ErrAlreadyPresent] if the ID is taken,
// [ErrBadSpec] for a spec that cannot work, and [ErrStrategy] for a
// simple-one-for-one supervisor.
func AddChild(ctx context.Context, sup actor.Ref, spec ChildSpec) (actor.Ref, error) {
	return call[actor.Ref](ctx, sup, addChildReq{spec: spec})
}

// TerminateChild stops a child within its shutdown budget and keeps its
// spec (a temporary child's spec, and a simple-one-for-one child, are
// dropped); a restart it was waiting for is cancelled. The child is named
// by ID, or by Ref. It returns [ErrNotFound] for no such child, and
// [ErrStrategy] for an ID given to a simple-one-for-one supervisor.
func TerminateChild[K ChildKey](ctx context.Context, sup actor.Ref, child K) error {
	r := terminateReq{}
	switch k := any(child).(type) {
	case string:
		r.id = k
	case actor.Ref:
		r.ref, r.byRef = k, true
	}
	_, err := call[any](ctx, sup, r)
	return err
}

// RestartChild starts again a child whose spec the supervisor holds and
// that has no process (stopped by [TerminateChild], or a transient child
// that exited normally). It returns [ErrRunning], [ErrRestarting],
// [ErrNotFound], a *[StartError], or [ErrStrategy] for a
// simple-one-for-one supervisor.
func RestartChild(ctx context.Context, sup actor.Ref, id string) (actor.Ref, error) {
	return call[actor.Ref](ctx, sup, restartReq{id: id})
}

// DeleteChild drops the spec of a child that has no process. It returns
// [ErrRunning], [ErrRestarting], [ErrNotFound], or [ErrStrategy] for a
// simple-one-for-one supervisor.
func DeleteChild(ctx context.Context, sup actor.Ref, id string) error {
	_, err := call[any](ctx, sup, deleteReq{id: id})
	return err
}

// WhichChildren lists a supervisor's children: in start order, or for a
// simple-one-for-one supervisor in the order StartChild started them.
func WhichChildren(ctx context.Context, sup actor.Ref) ([]Child, error) {
	return call[[]Child](ctx, sup, whichReq{})
}

// CountChildren counts a supervisor's children.
func CountChildren(ctx context.Context, sup actor.Ref) (Counts, error) {
	return call[Counts](ctx, sup, countReq{})
}

// Walk calls fn for every child in the tree under sup, depth first and in
// start order: each child, then, for a running subtree, its own children.
// It stops at the first error from fn and returns it. A subtree that
// exits while Walk visits it is skipped: its children have gone with it.
//
// Walk is the supported way to find processes in a tree, such as every
// running machine of one name for an upgrade: it asks each supervisor in
// turn for its children, so it sees each supervisor at one moment, not the
// whole tree at one moment; a child restarted meanwhile may be seen under
// its old Ref, which then reports actor.ErrNoProc.
func Walk(ctx context.Context, sup actor.Ref, fn func(Child) error) error {
	children, err := WhichChildren(ctx, sup)
	if err != nil {
		return err
	}
	return walk(ctx, children, fn)
}

func walk(ctx context.Context, children []Child, fn func(Child) error) error {
	for _, ch := range children {
		if err := fn(ch); err != nil {
			return err
		}
		if ch.Spec.Kind != Subtree || ch.Status != Running {
			continue
		}
		sub, err := WhichChildren(ctx, ch.Ref)
		var exit *actor.ExitError
		switch {
		case errors.Is(err, actor.ErrNoProc) || errors.As(err, &exit):
			continue
		case err != nil:
			return fmt.Errorf("supervisor: walking subtree %q: %w", ch.ID, err)
		}
		if err := walk(ctx, sub, fn); err != nil {
			return err
		}
	}
	return nil
}

// Workers returns every running worker in the tree under sup, in Walk's
// order. Filter them by asking each one what it is: for an upgrade, its
// machine's name.
func Workers(ctx context.Context, sup actor.Ref) ([]Child, error) {
	var out []Child
	err := Walk(ctx, sup, func(ch Child) error {
		if ch.Spec.Kind == Worker && ch.Status == Running {
			out = append(out, ch)
		}
		return nil
	})
	return out, err
}
