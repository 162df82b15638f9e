package supervisor

import (
	"errors"
	"time"

	"github.com/hotline-go/hotline/actor"
)

// This file is the deterministic core: plain functions of their arguments,
// with time passed in. The supervisor's handlers only drive them.

// window is the restart-intensity window: the times of the latest
// restarts, at most intensity of them, in a ring that grows to that size
// and then is overwritten in place, so that counting a restart allocates
// nothing once the window is full. The ring is held in blocks of
// windowBlock times, added as it grows, so that growing never copies what
// it holds (a supervisor allowed a million restarts an hour would
// otherwise copy megabytes, again and again, as its window fills). Times
// are offsets from any fixed origin (the supervisor uses its start), so
// that the window holds no pointers but the blocks'.
type window struct {
	blocks [][]time.Duration // the ring, windowBlock times a block (one block of intensity if fewer)
	n      int               // times held, up to intensity
	next   int               // the oldest entry, once n == intensity
}

const windowBlock = 256

// at returns the entry i of the ring.
func (w *window) at(i int) *time.Duration {
	return &w.blocks[i/windowBlock][i%windowBlock]
}

// add records a restart at now (no earlier than those recorded) and
// reports whether the supervisor stays within its intensity: at most
// intensity restarts in any period. As in OTP's supervisor, a restart
// exactly period before now still counts, and the one being recorded
// counts too, so the (intensity+1)th restart within the period is the one
// refused; then all the restarts the window holds are within the period,
// and with now they are intensity+1. Only the latest intensity restarts
// matter: now is refused exactly when the intensity-th latest before it
// is within the period.
func (w *window) add(now time.Duration, intensity int, period time.Duration) bool {
	if intensity <= 0 {
		return false
	}
	if w.n < intensity {
		if w.n%windowBlock == 0 {
			w.blocks = append(w.blocks, make([]time.Duration, min(intensity-w.n, windowBlock)))
		}
		*w.at(w.n) = now
		w.n++
		return true
	}
	if *w.at(w.next) >= now-period {
		return false
	}
	*w.at(w.next) = now
	w.next = (w.next + 1) % intensity
	return true
}

// backoffDelay is the wait before the step-th consecutive restart of a
// child (step ≥ 1): min·2^(step−1), capped at max, then stretched by up to
// jitter×delay with u in [0, 1). Without a backoff (min ≤ 0) it is zero.
func backoffDelay(min, max time.Duration, step int, jitter, u float64) time.Duration {
	if min <= 0 {
		return 0
	}
	d := min
	for i := 1; i < step && d < max; i++ {
		d *= 2
	}
	d = minDuration(d, max)
	if jitter > 0 {
		d += time.Duration(float64(d) * jitter * u)
	}
	return d
}

func minDuration(a, b time.Duration) time.Duration {
	if b < a {
		return b
	}
	return a
}

// shouldRestart reports whether a child with restart type r that exited
// with reason is started again. A transient child is, unless its reason is
// Normal or Shutdown (an error that wraps Shutdown counts as Shutdown, as
// OTP's {shutdown, Term} does).
func shouldRestart(r Restart, reason error) bool {
	if errors.Is(reason, actor.Moved) {
		return false // it runs on elsewhere: a restart would make two
	}
	switch r {
	case Permanent:
		return true
	case Transient:
		return !isShutdown(reason)
	default:
		return false
	}
}

// isShutdown reports whether reason is an orderly exit: Normal or Shutdown.
func isShutdown(reason error) bool {
	return actor.IsNormal(reason) || errors.Is(reason, actor.Shutdown)
}

// group is the range [lo, hi) of the n children, in start order, that the
// strategy stops and starts again when child i exits: child i alone
// (one-for-one and simple-one-for-one), i and those started after it
// (rest-for-one), or all of them (one-for-all).
func group(s Strategy, n, i int) (lo, hi int) {
	switch s {
	case OneForAll:
		return 0, n
	case RestForOne:
		return i, n
	default:
		return i, i + 1
	}
}

// expectedExit reports whether a child stopped by its supervisor exited
// as it was asked to: with Shutdown, or Killed after a kill; a child that
// is not permanent may also have exited Normal or with Shutdown on its own
// just before. Anything else is reported, as OTP reports a shutdown_error.
func expectedExit(r Restart, reason error) bool {
	if errors.Is(reason, actor.Shutdown) || errors.Is(reason, actor.Killed) {
		return true
	}
	return r != Permanent && isShutdown(reason)
}
