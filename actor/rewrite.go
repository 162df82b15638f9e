package actor

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// ChangeCodeQueued is [ChangeCode] for a change that also rewrites the user
// messages waiting in the suspended actor's mailbox, such as a new version
// of a handler that reads its messages in a new format. fn gets the
// Behavior and the waiting messages, oldest first, as [QueuedMessages] lists
// them; it returns the new Behavior and either nil, which leaves the
// messages as they are, or one message for each of them, in order, to take
// its place (a call keeps its caller, who gets the reply as before).
//
// The change is all or nothing: if fn returns an error or panics, the actor
// keeps its Behavior and its messages as they were. Messages that arrive
// while fn runs are not in its list and are left as sent; a message of the
// list that a [DropOldest] bound drops meanwhile stays dropped. It returns
// ErrNotSuspended unless the actor was suspended by [Suspend].
func ChangeCodeQueued(ctx context.Context, r Ref, fn func(old Behavior, queued []Queued) (Behavior, []any, error)) error {
	if r.a == nil {
		return ErrNoProc
	}
	return request(ctx, r, sysMsg{kind: sysChangeCode, qfn: fn})
}

// changeQueued is the change of a ChangeCodeQueued: it runs fn on b and
// the list of queued messages, and rewrites them with what fn returns.
// (A method, not a closure made by ChangeCodeQueued, so that a change
// allocates nothing of its own while the actor is suspended.)
func (a *actor) changeQueued(fn func(Behavior, []Queued) (Behavior, []any, error), b Behavior) (Behavior, error) {
	// The actor is ours (on its goroutine, or claimed inline): no one
	// else takes messages from cur or user; senders only append to user,
	// and a DropOldest bound drops from it, which the mailbox logs while
	// fn runs.
	a.mu.Lock()
	var q []Queued
	inCur := 0
	mb := a.mb
	if mb != nil {
		q = make([]Queued, 0, mb.cur.n+mb.user.n)
		q = mb.cur.appendTo(q)
		inCur = len(q)
		q = mb.user.appendTo(q)
		mb.logDrops = true
	}
	a.mu.Unlock()
	ran := false
	defer func() {
		if !ran && mb != nil { // fn panicked
			a.mu.Lock()
			mb.logDrops, mb.dropLog = false, nil
			a.mu.Unlock()
		}
	}()

	nb, msgs, err := fn(b, q)
	ran = true
	a.mu.Lock()
	defer a.mu.Unlock()
	var dropped []int
	if mb != nil {
		dropped = mb.dropLog
		mb.logDrops, mb.dropLog = false, nil
	}
	switch {
	case err != nil:
		return b, err
	case nb == nil:
		return b, errors.New("actor: change code returned a nil behavior")
	case len(msgs) == 0 && len(q) == 0, msgs == nil:
		return nb, nil
	case len(msgs) != len(q):
		return b, fmt.Errorf("actor: change code returned %d messages for %d queued", len(msgs), len(q))
	}
	mb.cur.rewrite(msgs[:inCur])
	mb.user.rewrite(survivors(msgs[inCur:], dropped))
	return nb, nil
}

// survivors returns the messages of list, the user queue as fn saw it,
// that are still queued after the drops logged since (each the index in
// the queue of the message dropped then), in order. The messages of the
// list stay ahead of those queued since, so a drop at an index past the
// survivors took a newer message.
func survivors(list []any, dropped []int) []any {
	if len(dropped) == 0 {
		return list
	}
	idx := make([]int, len(list))
	for i := range idx {
		idx[i] = i
	}
	for _, d := range dropped {
		if d < len(idx) {
			idx = slices.Delete(idx, d, d+1)
		}
	}
	out := make([]any, len(idx))
	for k, i := range idx {
		out[k] = list[i]
	}
	return out
}

// rewrite replaces the first len(msgs) letters of the queue, which holds
// at least that many, keeping the callers of calls.
func (q *queue) rewrite(msgs []any) {
	off := q.off
	for s := q.head; s != nil && len(msgs) > 0; s = s.next {
		for i := off; i < s.n && len(msgs) > 0; i++ {
			if cl, ok := s.msgs[i].(*call); ok {
				cl.msg = msgs[0]
			} else {
				s.msgs[i] = msgs[0]
			}
			msgs = msgs[1:]
		}
		off = 0
	}
}
