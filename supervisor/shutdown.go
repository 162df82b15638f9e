package supervisor

import (
	"context"
	"errors"
	"runtime/debug"
	"slices"
	"time"

	"github.com/hotline-go/hotline/actor"
)

// stopGroup stops the other children of ch's group, in reverse start
// order, and drops the temporary ones, as OTP's terminate_children does
// before a group restart. Delayed restarts pending among them are
// cancelled: the group starts again as a whole.
func (s *supervisor) stopGroup(c *actor.Context, ch *child) {
	if s.strategy != OneForAll && s.strategy != RestForOne {
		return // the group is ch alone
	}
	lo, hi := group(s.strategy, len(s.children), slices.Index(s.children, ch))
	members := slices.Clone(s.children[lo:hi])
	for i := len(members) - 1; i >= 0; i-- {
		if m := members[i]; m != ch {
			s.stopChild(c, m)
		}
	}
	for _, m := range members {
		if m != ch && m.spec.Restart == Temporary {
			s.remove(m)
		}
	}
}

// stopAll stops every child: in reverse start order, each in turn within
// its budget; or, for a simple-one-for-one supervisor, all at once within
// the one spec's budget, as OTP does.
func (s *supervisor) stopAll(c *actor.Context) {
	if s.strategy != SimpleOneForOne {
		for i := len(s.children) - 1; i >= 0; i-- {
			s.stopChild(c, s.children[i])
		}
		return
	}
	var refs []actor.Ref
	for ch := range s.dynamic {
		if ch.status == Running {
			refs = append(refs, ch.ref)
		}
		s.forget(ch)
		delete(s.dynamic, ch)
	}
	s.shutdown(c, &s.template, refs)
}

// stopChild stops ch's process, if it has one, and cancels a restart it
// was waiting for. Its exit signal, when it comes, is from a Ref that is
// no longer a child's, and is ignored.
func (s *supervisor) stopChild(c *actor.Context, ch *child) {
	ref, running := ch.ref, ch.status == Running
	s.forget(ch)
	if running {
		s.shutdown(c, &ch.spec, []actor.Ref{ref})
	}
}

// forget marks ch stopped, without its process.
func (s *supervisor) forget(ch *child) {
	if ch.timer != nil {
		ch.timer.Stop()
		ch.timer = nil
	}
	ch.gen++
	if ch.status == Running {
		s.untrack(ch)
	}
	ch.ref, ch.status = actor.Ref{}, Stopped
}

// shutdown stops the processes refs, all of spec, and waits for them, as
// OTP's shutdown does: brutal kill, or actor.Stop with reason Shutdown and
// a kill if they have not exited within the budget. A killed child exits
// when its current handler returns; one that has not after the kill wait
// is logged, unlinked and abandoned (see WithKillWait).
func (s *supervisor) shutdown(c *actor.Context, spec *ChildSpec, refs []actor.Ref) {
	if len(refs) == 0 {
		return
	}
	reasons := make([]error, len(refs))
	budget := spec.budget()
	kill := budget == BrutalKill
	if !kill {
		// Ask all, then wait: with a done ctx, Stop asks without waiting.
		asked, cancel := context.WithCancel(context.Background())
		cancel()
		for _, r := range refs {
			if err := actor.Stop(asked, r, actor.Shutdown); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, actor.ErrNoProc) {
				c.Logger().Error("supervisor: stopping a child", "child", spec.ID, "ref", r, "error", err)
			}
		}
		if !await(budget, refs, reasons) {
			c.Logger().Warn("supervisor: child did not stop within its shutdown budget; killing it",
				"child", spec.ID, "budget", budget)
			kill = true
		}
	}
	if kill {
		for i, r := range refs {
			if reasons[i] == nil {
				// A child that is already gone has nothing left to kill.
				_ = actor.Kill(r)
			}
		}
		await(s.cfg.killWait, refs, reasons)
	}
	for i, r := range refs {
		switch reason := reasons[i]; {
		case reason == nil:
			c.Logger().Error("supervisor: killed child still running its handler; abandoning it",
				"child", spec.ID, "ref", r, "waited", s.cfg.killWait)
			c.Unlink(r)
		case !expectedExit(spec.Restart, reason):
			c.Logger().Error("supervisor: child exited with an unexpected reason while being stopped",
				"child", spec.ID, "ref", r, "reason", reason)
		}
	}
}

// await waits up to d (Infinity: for ever) for each of refs that has no
// reason yet to exit, records the reasons, and reports whether all exited.
func await(d time.Duration, refs []actor.Ref, reasons []error) bool {
	ctx := context.Background()
	if d != Infinity {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	for i, r := range refs {
		if reasons[i] != nil {
			continue
		}
		reason, err := actor.Wait(ctx, r)
		if err != nil {
			return false
		}
		reasons[i] = reason
	}
	return true
}

func newPanicError(v any) *actor.PanicError {
	return &actor.PanicError{Value: v, Stack: debug.Stack()}
}
