package actor

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
)

// A Ref names an actor. It is a small comparable value, safe to copy, to
// compare with == and to use as a map key; the zero Ref names no actor.
// A Ref stays valid after its actor exits: sending to it reports ErrNoProc.
type Ref struct {
	a *actor
}

// IsZero reports whether r is the zero Ref.
func (r Ref) IsZero() bool { return r.a == nil }

// ID returns the actor's number, unique within its System.
func (r Ref) ID() uint64 {
	if r.a == nil {
		return 0
	}
	return r.a.id
}

// String returns "<id>", or "<nil>" for the zero Ref.
func (r Ref) String() string {
	if r.a == nil {
		return "<nil>"
	}
	return "<" + strconv.FormatUint(r.a.id, 10) + ">"
}

// Send puts msg in the actor's mailbox and returns without waiting for it
// to be handled. Messages from one sender arrive in the order sent. Send
// never blocks. It returns ErrNoProc if the actor has exited, and
// ErrMailboxFull if its bounded mailbox is full under the [Reject] policy;
// either way the message is a dead letter.
func Send(to Ref, msg any) error {
	if to.a == nil {
		return ErrNoProc
	}
	return to.a.push(msg)
}

// Call sends msg and waits for the handler's reply ([Context.Reply] or a
// [From] taken for later), or for ctx to end. It returns the reply's value
// and error; ErrNoReply if the handler returned without replying; an
// *[ExitError] if the actor exited before replying; ErrNoProc,
// ErrMailboxFull, or ctx's error (wrapped). A reply that comes after ctx
// ended is dropped.
//
// When ctx cannot end (its Done channel is nil, as for
// [context.Background]) and the actor is idle (on no goroutine, not
// suspended, nothing in its mailbox), the handler runs on the caller's
// goroutine, with the actor to itself as on a worker: messages sent
// meanwhile queue behind the call, and a panic in the handler ends the
// actor as it would on a worker. This saves the hand-offs to and from a
// worker; order, exclusivity and exits are as through the mailbox. With
// a ctx that can end, the call always goes through the mailbox, so that
// Call returns when ctx ends even if the handler blocks.
func Call(ctx context.Context, to Ref, msg any) (any, error) {
	a := to.a
	if a == nil {
		return nil, ErrNoProc
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("actor: call to %v: %w", to, err)
	}
	s := a.sys
	c := s.getCall()
	gen := c.state.Load() >> 1
	c.msg = msg
	done := ctx.Done()
	if done == nil && a.claim() {
		// The actor was idle and is now this goroutine's to run, as a
		// worker's would be: handle the call here rather than hand it to
		// a worker and wait. Only for a ctx that cannot end: a handler on
		// the caller's goroutine cannot be abandoned when ctx ends.
		a.runCall(c, gen)
		r := <-c.ch // answered, or a From taken: answered later
		s.putCall(c, gen)
		return r.v, r.err
	}
	if err := a.push(c); err != nil {
		s.putCall(c, gen)
		return nil, err
	}
	if done == nil {
		r := <-c.ch
		s.putCall(c, gen)
		return r.v, r.err
	}
	select {
	case r := <-c.ch:
		s.putCall(c, gen)
		return r.v, r.err
	case <-done:
		if c.state.CompareAndSwap(gen<<1, gen<<1|1) {
			// Nobody will answer now. The call may still sit in the
			// mailbox, so it is left to the garbage collector.
			return nil, fmt.Errorf("actor: call to %v: %w", to, ctx.Err())
		}
		// A reply is on its way or there: it was made, so hand it over.
		r := <-c.ch
		s.putCall(c, gen)
		return r.v, r.err
	}
}

// call is a Call's message and reply slot, queued in the mailbox in place of
// the message (a user cannot send one: the type is unexported). It is reused
// once its caller has the reply, never while it may still be queued: state
// holds the generation in its high bits and a replied bit, so that a stale
// From can never answer a later Call.
type call struct {
	ch    chan reply // buffered 1
	state atomic.Uint64
	msg   any
}

type reply struct {
	v   any
	err error
}

func (c *call) reply(gen uint64, v any, err error) bool {
	if !c.state.CompareAndSwap(gen<<1, gen<<1|1) {
		return false
	}
	c.ch <- reply{v, err}
	return true
}

// From is the caller of a Call, taken with [Context.From] to answer after
// the handler has returned (from this actor's later messages or from
// another goroutine). Only the first reply counts. If the actor exits
// first, the caller gets an *[ExitError]. The zero From answers nobody.
type From struct {
	c     *call
	gen   uint64
	owner *actor
}

// IsZero reports whether f answers nobody.
func (f From) IsZero() bool { return f.c == nil }

// Reply answers the caller with v and reports whether this was the first
// answer.
func (f From) Reply(v any) bool { return f.answer(v, nil) }

// ReplyError answers the caller with err and reports whether this was the
// first answer.
func (f From) ReplyError(err error) bool { return f.answer(nil, err) }

func (f From) answer(v any, err error) bool {
	if f.c == nil {
		return false
	}
	if f.owner != nil {
		f.owner.mu.Lock()
		if f.owner.ext != nil {
			delete(f.owner.ext.pending, f.c)
		}
		f.owner.mu.Unlock()
	}
	return f.c.reply(f.gen, v, err)
}
