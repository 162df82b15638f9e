package actor

// linkSet is an actor's set of links. Most actors have one link (their
// supervisor) or none, so the first link is held in place and a map is
// made only for a second: linking a new child costs no allocation.
type linkSet struct {
	one  *actor              // a link, when many is nil
	many map[*actor]struct{} // every link, once there were two at once
}

func (s *linkSet) add(b *actor) {
	switch {
	case s.many != nil:
		s.many[b] = struct{}{}
	case s.one == nil || s.one == b:
		s.one = b
	default:
		s.many = map[*actor]struct{}{s.one: {}, b: {}}
		s.one = nil
	}
}

func (s *linkSet) has(b *actor) bool {
	if s.many != nil {
		_, ok := s.many[b]
		return ok
	}
	return s.one == b && b != nil
}

func (s *linkSet) remove(b *actor) {
	if s.many != nil {
		delete(s.many, b)
	} else if s.one == b {
		s.one = nil
	}
}

// signalMode says how an exiting actor tells its links.
type signalMode uint8

const (
	// queueSignal: each link gets the exit signal in its mailbox.
	queueSignal signalMode = iota
	// handOffSignal: as queueSignal, except that a link that is idle (on
	// no goroutine, not suspended, nothing queued) is claimed for the
	// exiting goroutine, which handles the signal itself once the exit is
	// complete: a supervisor restarts its child on the worker the child
	// crashed on, with no goroutine woken in between. Only a worker
	// exits this way: a Call run on its caller's goroutine must not make
	// that caller run another actor's handler, which may wait for it.
	handOffSignal
)

// signal is how an actor exiting on c's goroutine tells its links.
func (c *Context) signal() signalMode {
	if c != nil && c.worker {
		return handOffSignal
	}
	return queueSignal
}

// claimLocked is claim (actor.go) with a's lock held: the exit path
// claims a link under the lock it takes to unlink it.
func (a *actor) claimLocked() bool {
	if a.flags&(fScheduled|fSuspended|fDead) != 0 ||
		(a.mb != nil && (a.mb.user.n > 0 || a.mb.cur.n > 0 || len(a.mb.sys) > 0)) {
		return false
	}
	a.flags |= fScheduled
	return true
}

// handOff handles the exit signal of a, which has exited, on the goroutine
// that ran a, for l, which signalLink claimed for it: as l's worker would
// handle it as the only message in its mailbox, in the same order (nothing
// was queued for l when it was claimed; what came since waits behind the
// signal, and release hands it to a worker). It runs after a's exit is
// complete (done closed, monitors told), so a handler that waits for a
// does not wait for itself. c is the worker's Context, which a no longer
// needs: it serves l meanwhile, and is given back as it was.
func (a *actor) handOff(l *actor, reason error, c *Context, seq uint64) {
	saved := *c
	*c = Context{a: l, worker: true}
	m := sysMsg{kind: sigExit, from: a, reason: reason, link: true, seq: seq}
	if !l.handleSys(c, &m, true) {
		l.release()
	}
	*c = saved
}
