package fsm

import (
	"context"
	"errors"
	"fmt"

	"github.com/hotline-go/hotline/actor"
)

// A ChangeOption configures a change of code.
type ChangeOption func(*changeConfig)

type changeConfig struct {
	down   bool
	reload bool // see Reload
}

// AsDowngrade makes a change of code a downgrade: the running version's
// downgrade handler ([Machine.OnDowngrade]) turns the data into the format of
// the target, an older version, which loads it. The default is an upgrade:
// the target's UPGRADE handler ([Machine.OnUpgrade]) reads the data of the
// running version.
func AsDowngrade() ChangeOption {
	return func(c *changeConfig) { c.down = true }
}

// ChangeCode moves a live machine to the version to: it suspends the
// machine (which finishes the event it is handling; new events wait in its
// mailbox), changes its code, and resumes it, whatever happened. The change
// encodes the data as msgpack and runs to's UPGRADE (or, with
// [AsDowngrade], the running version's downgrade), which may change the
// state, and converts the payloads of the events the machine holds and of
// those waiting in its mailbox. Timeouts that run go on running and are
// delivered to to; postponed events stay postponed; the events that arrived
// meanwhile are then handled by to, in order.
//
// If anything fails, the machine keeps its old version, state and data,
// its held events and its mailbox as they were, and ChangeCode returns an *[UpgradeError] that names the machine, both
// versions and the reason (ErrWrongMachine, ErrSameVersion, the handler's
// error, a *[actor.PanicError]). If ctx ends while ChangeCode waits for a
// busy machine, it returns ctx's error and the machine was not changed;
// it is resumed if ChangeCode had suspended it, and otherwise left as it
// was. Suspensions are counted ([actor.Suspend]): ChangeCode ends only its
// own, so a machine that another caller holds suspended (a release
// handler's cut, an operator) stays suspended after it, whether the change
// succeeded or failed. A change that the
// machine had already taken when ctx ended is carried out, with ctx, and
// ChangeCode returns its result (see [actor.ChangeCode]).
func ChangeCode(ctx context.Context, ref actor.Ref, to Code, opts ...ChangeOption) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fsm: change code of %v: %w", ref, err)
	}
	// A suspension that fails was not made (actor.Suspend drops one given
	// up): there is nothing to resume, and resuming could end another
	// caller's suspension.
	if err := actor.Suspend(ctx, ref); err != nil {
		return err
	}
	// Resumed whatever the error: one that wraps ErrNoProc may come from
	// the change itself (an UPGRADE that asked an actor that had exited),
	// and the Resume of a machine that has exited returns ErrNoProc.
	err := ChangeSuspended(ctx, ref, to, opts...)
	if rerr := actor.Resume(context.WithoutCancel(ctx), ref); rerr != nil && !errors.Is(rerr, actor.ErrNoProc) {
		err = errors.Join(err, rerr)
	}
	return err
}

// ChangeSuspended is [ChangeCode] for a machine that the caller has
// suspended with [actor.Suspend] and will resume with [actor.Resume]:
// what a release handler uses to move many machines at one point. Until
// the machine handles an event, [Revert] undoes the change exactly. It
// returns actor.ErrNotSuspended if the machine is not suspended.
func ChangeSuspended(ctx context.Context, ref actor.Ref, to Code, opts ...ChangeOption) error {
	var cfg changeConfig
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.reload {
		return onMachine(ctx, ref, func(m *machine) error { return m.reload(ctx, to) })
	}
	return withQueued(ctx, ref, func(m *machine, q []actor.Queued) ([]any, error) {
		return m.change(ctx, to, cfg.down, q)
	})
}

// Revert undoes the last change of code of a suspended machine, putting
// back the version, state and data it had, and its held events and the
// events the change converted in its mailbox as they were: the rollback of an atomic rollout when another machine failed to
// change. It returns ErrNoRevert if the machine has handled an event since
// the change, or was not changed, and actor.ErrNotSuspended if it is not
// suspended.
func Revert(ctx context.Context, ref actor.Ref) error {
	return withQueued(ctx, ref, (*machine).revert)
}

// onMachine runs f on a suspended machine's goroutine.
func onMachine(ctx context.Context, ref actor.Ref, f func(*machine) error) error {
	return actor.ChangeCode(ctx, ref, func(b actor.Behavior) (actor.Behavior, error) {
		m, ok := b.(*machine)
		if !ok {
			return b, ErrNotMachine
		}
		return m, f(m)
	})
}

// withQueued runs f on a suspended machine's goroutine with the messages
// waiting in its mailbox, and puts the messages f returns in their place
// if f succeeds.
func withQueued(ctx context.Context, ref actor.Ref, f func(*machine, []actor.Queued) ([]any, error)) error {
	return actor.ChangeCodeQueued(ctx, ref, func(b actor.Behavior, q []actor.Queued) (actor.Behavior, []any, error) {
		m, ok := b.(*machine)
		if !ok {
			return b, nil, ErrNotMachine
		}
		msgs, err := f(m, q)
		return m, msgs, err
	})
}
