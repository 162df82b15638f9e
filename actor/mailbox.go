package actor

import (
	"sync"
	"sync/atomic"
)

// mailbox holds an actor's queued messages. Senders append to user under
// the actor's lock; the running goroutine takes the whole user queue at
// once into cur and handles cur without the lock, so a busy actor and its
// senders meet on the lock once per batch, not once per message.
type mailbox struct {
	// Written by senders, under the actor's lock.
	user   queue
	sys    []sysMsg
	bound  int
	policy Overflow
	taken  int // messages moved to cur at the last refill; for the bound
	// pushed counts the messages senders have queued in user, ever: an
	// exit signal notes it when it is queued, so that its Exit message
	// takes its place among them (see actor.pushSignal).
	pushed uint64
	// While a ChangeCodeQueued's function runs (logDrops), dropLog holds
	// the index in user of each message a DropOldest bound dropped.
	logDrops bool
	dropLog  []int

	// Read by the running goroutine at every message: kept off the cache
	// line that senders write.
	_          [64]byte
	sysPending atomic.Bool // a system message waits; set under the actor's lock
	cur        queue       // owned by the running goroutine; swapped under the lock
	// handled counts the messages of cur handled since the refill, for
	// bounded mailboxes, so that a sender can count what still waits.
	handled atomic.Int32
}

// queued is the number of messages waiting, as a sender sees it.
func (mb *mailbox) queued() int {
	return mb.user.n + mb.taken - int(mb.handled.Load())
}

const segSize = 128

// A segment holds a run of messages. Segments come from and go back to the
// System's pool, so an idle actor holds none and a busy one allocates none.
type segment struct {
	msgs [segSize]envelope
	n    int // messages written
	next *segment
}

// queue is a FIFO of envelopes in a list of segments.
type queue struct {
	head, tail *segment
	off        int // index of the first message in head
	n          int // messages in the queue
}

func (q *queue) push(pool *sync.Pool, e envelope) {
	t := q.tail
	if t == nil || t.n == segSize {
		s, _ := pool.Get().(*segment)
		if s == nil {
			s = new(segment)
		}
		if t == nil {
			q.head = s
		} else {
			t.next = s
		}
		q.tail, t = s, s
	}
	t.msgs[t.n] = e
	t.n++
	q.n++
}

// pop removes the oldest message; the queue must not be empty.
func (q *queue) pop(pool *sync.Pool) envelope {
	h := q.head
	e := h.msgs[q.off]
	q.off++
	q.n--
	if q.off == h.n {
		q.head, q.off = h.next, 0
		if q.head == nil {
			q.tail = nil
		}
		release(pool, h)
	}
	return e
}

// replace drops the i-th message (0 is the oldest) and queues e last,
// keeping the order of the rest, and returns the dropped one.
func (q *queue) replace(pool *sync.Pool, i int, e envelope) envelope {
	if i == 0 {
		old := q.pop(pool)
		q.push(pool, e)
		return old
	}
	all := make([]envelope, 0, q.n)
	for q.n > 0 {
		all = append(all, q.pop(pool))
	}
	old := all[i]
	for j, m := range all {
		if j != i {
			q.push(pool, m)
		}
	}
	q.push(pool, e)
	return old
}

// remove takes the messages for which drop is true out of the queue,
// keeping the order of the rest, and returns how many it took.
func (q *queue) remove(pool *sync.Pool, drop func(envelope) bool) int {
	if q.n == 0 {
		return 0
	}
	keep := make([]envelope, 0, q.n)
	for q.n > 0 {
		if e := q.pop(pool); !drop(e) {
			keep = append(keep, e)
		}
	}
	for _, e := range keep {
		q.push(pool, e)
	}
	return cap(keep) - len(keep)
}

// oldestDroppable returns the index of the oldest message that a DropOldest
// bound may drop, or -1 if there is none: every message but an Exit or a
// Down, which stand for signals.
func (q *queue) oldestDroppable() int {
	i, off := 0, q.off
	for s := q.head; s != nil; s = s.next {
		for _, e := range s.msgs[off:s.n] {
			switch e.(type) {
			case Exit, Down:
			default:
				return i
			}
			i++
		}
		off = 0
	}
	return -1
}

// insert puts e before the i-th message (0 is the oldest), or last when i
// is the length of the queue.
func (q *queue) insert(pool *sync.Pool, e envelope, i int) {
	if i >= q.n {
		q.push(pool, e)
		return
	}
	all := make([]envelope, 0, q.n+1)
	for q.n > 0 {
		all = append(all, q.pop(pool))
	}
	all = append(all[:i+1], all[i:]...)
	all[i] = e
	for _, m := range all {
		q.push(pool, m)
	}
}

// drain calls f for every message, oldest first, and empties the queue.
func (q *queue) drain(pool *sync.Pool, f func(envelope)) {
	for q.n > 0 {
		f(q.pop(pool))
	}
	*q = queue{}
}

func release(pool *sync.Pool, s *segment) {
	clear(s.msgs[:s.n])
	s.n, s.next = 0, nil
	pool.Put(s)
}

// appendTo appends the letters of the queue, oldest first, to out.
func (q *queue) appendTo(out []Queued) []Queued {
	off := q.off
	for s := q.head; s != nil; s = s.next {
		for _, e := range s.msgs[off:s.n] {
			q := Queued{Msg: letter(e)}
			switch e.(type) {
			case *call:
				q.Call = true
			case Exit, Down:
				q.Signal = true
			}
			out = append(out, q)
		}
		off = 0
	}
	return out
}
