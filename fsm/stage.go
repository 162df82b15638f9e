package fsm

import (
	"bytes"
	"context"
	"errors"
	"reflect"

	"github.com/hotline-go/hotline/actor"
	"github.com/vmihailenco/msgpack/v5"
)

// A Stager makes a change of code of one machine in two short suspensions
// instead of one: [Stager.Stage] copies what the change needs from the
// suspended machine (its state, its data, its held events);
// [Stager.Prepare], with the machine running again, runs the UPGRADE (or
// the downgrade) on that copy, makes the new instance and converts the
// held events; [Stager.Commit], on the machine suspended again, puts the
// prepared instance in place if the machine has handled no event since
// Stage, and otherwise makes the whole change there, as [ChangeSuspended]
// does. [Stager.Release] then drops what Commit did not use.
//
// What runs while the machine is suspended is what must see its current
// data, and nothing else. For an in-process machine ([Machine]) Stage
// copies the data as a Go value, deeply (slices, maps and pointed-to
// values, exported fields or not), into memory the Stager keeps from the
// last machine of the same type, and Prepare encodes the copy; a data type
// that holds an interface, a channel or a function, or is recursive, or
// holds a type with its own msgpack encoding (EncodeMsgpack, MarshalBinary,
// ...) and a pointer that the encoding might compare (a copy keeps values,
// not pointers' identity; *time.Location and unique.Handle, hence
// netip.Addr, are shared), is encoded in Stage's window instead. With an empty mailbox neither window
// allocates (once the Stager's copy has grown to the data's size, and if
// the data holds no map), so that a garbage collection or a mark assist is
// unlikely to start while the machine waits.
//
// The result is the change [ChangeSuspended] makes: same checks, same
// errors, same conversions; [Revert] undoes it until the machine handles
// an event. Two differences: UPGRADE may run twice for one change (on the
// copy, then again on the current data if the machine handled an event in
// between), so it must be a function of its arguments; and a machine whose
// last change can still be reverted is not staged (Commit then makes the
// whole change), because staging takes the place where that undo is kept.
//
// The caller suspends and resumes the machine around Stage and Commit
// ([actor.Suspend], [actor.Resume]), so that it knows how long each
// suspension lasted. Make a Stager with [NewStager]; it is for one
// goroutine at a time, and keeps its buffers from one machine to the
// next, so that one Stager serves a whole rollout.
type Stager struct {
	mark *undo // this Stager's marker in a staged machine's undo slot

	// What Stage copied.
	ref       actor.Ref
	staged    bool
	code      Code
	state     string
	id        string
	flags     FlagSource
	data      []byte         // the data, in code's format
	enc       *encoder       // Stage's own, for in-process instances
	copied    dataAppender   // the data copied as a Go value, for Prepare to encode into data
	scratch   []dataAppender // copies kept for their memory, one per type of data
	postponed []item
	timers    []timer // pending timeouts, in the machine's order

	// What Prepare made.
	to        Code
	down      bool
	reload    bool
	prepared  bool
	in        Instance // the new instance, until Commit installs it
	u         *undo
	converted []item // the postponed events, converted
	payloads  []any  // the timeouts' payloads, converted

	// ctx is Commit's, for the duration of the call only: the functions
	// run on the machine are made once, so that calling them allocates
	// nothing.
	ctx      context.Context
	stageFn  func(actor.Behavior) (actor.Behavior, error)
	commitFn func(actor.Behavior, []actor.Queued) (actor.Behavior, []any, error)
}

// NewStager returns a Stager with nothing staged.
func NewStager() *Stager {
	s := &Stager{mark: &undo{}} // no instance: a marker
	s.enc = newEncoder()
	s.stageFn = s.stage
	s.commitFn = s.commit
	return s
}

// Stage copies, from the machine ref that the caller has suspended, what
// a change of its code needs: its state, its data (as a Go value or as
// msgpack) and the events it holds; it marks the machine so that Commit knows whether it
// has handled an event since. It forgets what an earlier Stage copied. It
// returns actor.ErrNotSuspended if the machine is not suspended,
// ErrNotMachine, or actor.ErrNoProc if it has exited. A machine that cannot
// be staged (its last change can still be reverted, it has stopped, or
// its data does not encode) is not an error: Commit makes the whole change
// on it (and reports what is wrong with it).
func (s *Stager) Stage(ctx context.Context, ref actor.Ref) error {
	s.Release()
	s.ref = ref
	return actor.ChangeCode(ctx, ref, s.stageFn)
}

// stage runs on the suspended machine.
func (s *Stager) stage(b actor.Behavior) (actor.Behavior, error) {
	m, ok := b.(*machine)
	if !ok {
		return b, ErrNotMachine
	}
	if m.stopped || m.undo != nil && !m.undo.marker() {
		return b, nil // a marker, ours or another Stager's, holds nothing
	}
	data := s.data[:0]
	err := protect(func() (err error) {
		if c, ok := m.in.(dataCopier); ok {
			if s.copied, s.scratch, ok = c.copyData(s.scratch); ok {
				return nil // encoded by Prepare, with the machine running
			}
		}
		data, err = appendData(s.enc, m.in, data)
		return err
	})
	if err != nil {
		// Commit makes the whole change, which fails and says why.
		if _, ok := m.in.(dataAppender); ok {
			s.enc = newEncoder() // it may have been left half way
		}
		return b, nil
	}
	s.data = data
	s.code, s.state, s.id, s.flags = m.code, m.in.State(), m.id, m.flags
	s.postponed = append(s.postponed, m.postponed...)
	s.timers = append(s.timers, m.timers...)
	m.undo = s.mark
	s.staged = true
	return b, nil
}

// appendData appends in's data in its version's msgpack format to b: for
// an instance of a Machine, with e and without allocating when b has room;
// for any other, through its Encode.
func appendData(e *encoder, in Instance, b []byte) ([]byte, error) {
	a, ok := in.(dataAppender)
	if !ok {
		data, err := in.Encode()
		if err != nil {
			return b, err
		}
		return append(b, data...), nil
	}
	return appendWith(e, a, b)
}

// appendWith appends a's data in msgpack to b, with e.
func appendWith(e *encoder, a dataAppender, b []byte) ([]byte, error) {
	e.out.B = b
	e.enc.Reset(&e.out)
	e.enc.SetSortMapKeys(true)
	err := a.encodeData(e.enc)
	b, e.out.B = e.out.B, nil
	if err != nil {
		return b[:0], err
	}
	return b, nil
}

// A dataAppender encodes its data with the encoder it is given: an
// instance of a Machine, whose data is a Go value.
type dataAppender interface {
	encodeData(enc *msgpack.Encoder) error
}

// encodeData encodes the data through a pointer, which (unlike the value
// in an interface) costs no allocation; msgpack encodes what it points at.
func (in *instance[D]) encodeData(enc *msgpack.Encoder) error { return enc.Encode(&in.data) }

// A dataCopier copies its data as a Go value: an instance of a Machine.
type dataCopier interface {
	// copyData copies the data into the copy of its type among scratch,
	// or into a new one that it appends to scratch, and returns the copy
	// and scratch. It returns false if the data's type cannot be copied
	// (see copierFor).
	copyData(scratch []dataAppender) (dataAppender, []dataAppender, bool)
}

// A dataCopy is a copy of a Machine's data, which a Stager encodes once
// the machine runs again.
type dataCopy[D any] struct{ data D }

func (c *dataCopy[D]) encodeData(enc *msgpack.Encoder) error { return enc.Encode(&c.data) }

// maxScratch is how many types of data a Stager keeps a copy of, for the
// next machine of the same type to reuse its memory.
const maxScratch = 4

func (in *instance[D]) copyData(scratch []dataAppender) (dataAppender, []dataAppender, bool) {
	if in.t.copy == nil {
		return nil, scratch, false
	}
	var c *dataCopy[D]
	for _, v := range scratch {
		if p, ok := v.(*dataCopy[D]); ok {
			c = p
			break
		}
	}
	if c == nil {
		c = new(dataCopy[D])
		if len(scratch) == maxScratch {
			// The oldest goes; not by scratch[1:], which would keep it
			// alive in the array behind the slice.
			copy(scratch, scratch[1:])
			scratch[len(scratch)-1] = c
		} else {
			scratch = append(scratch, c)
		}
	}
	in.t.copy(reflect.ValueOf(&c.data).Elem(), reflect.ValueOf(&in.data).Elem())
	return c, scratch, true
}

// Prepare makes the change of the staged machine's code to to, with the
// machine running: it runs to's UPGRADE (or, with [AsDowngrade], loads
// the copy in the running version and runs its downgrade, or with
// [Reload], to's Load) on a copy of the data that Stage took, makes the
// new instance, binds it to the machine's flags, and converts the held
// events. It checks what [ChangeSuspended] checks, and a failure is the
// same *[UpgradeError]: the machine was not changed. If Stage could not
// stage the machine, Prepare only records to and opts for Commit.
func (s *Stager) Prepare(ctx context.Context, to Code, opts ...ChangeOption) error {
	s.dropPrepared()
	var cfg changeConfig
	for _, o := range opts {
		o(&cfg)
	}
	s.to, s.down, s.reload = to, cfg.down, cfg.reload
	if s.staged && s.copied != nil {
		err := protect(func() (err error) {
			s.data, err = appendWith(s.enc, s.copied, s.data[:0])
			return err
		})
		s.copied = nil
		if err != nil {
			// As if Stage could not encode it: Commit makes the whole
			// change, which fails and says why.
			s.enc = newEncoder() // it may have been left half way
			s.staged = false
		}
	}
	if !s.staged {
		return nil
	}
	from := s.code
	fail := func(err error) error {
		return &UpgradeError{Machine: from.Machine(), ID: s.id, From: from.Version(), To: to.Version(), Down: s.down && !s.reload, Err: err}
	}
	if err := checkChange(from, to, s.reload); err != nil {
		return fail(err)
	}
	data := bytes.Clone(s.data) // the code may keep it
	var in Instance
	err := protect(func() error {
		var err error
		switch {
		case s.reload:
			in, err = to.Load(ctx, s.state, data)
		case s.down:
			in, err = s.downgrade(ctx, to, data)
		default:
			in, err = to.Upgrade(ctx, from.Version(), s.state, data)
		}
		return err
	})
	if err != nil {
		return fail(err)
	}
	if !s.reload {
		// The machine's postponed events become these: a slice of their
		// own, as a change of code makes.
		err = protect(func() error {
			var err error
			s.converted, s.payloads, err = convertHeld(ctx, to, s.postponed, s.timers,
				make([]item, 0, len(s.postponed)), s.payloads)
			return err
		})
		if err != nil {
			closeInstance(in)
			return fail(err)
		}
	}
	bindFlags(in, s.flags, s.id)
	s.in, s.prepared = in, true
	s.u = &undo{payloads: make([]any, len(s.timers))}
	return nil
}

// downgrade runs the running version's downgrade on a copy of the staged
// data, loaded in that version, and loads the result in to.
func (s *Stager) downgrade(ctx context.Context, to Code, data []byte) (Instance, error) {
	cur, err := s.code.Load(ctx, s.state, data)
	if err != nil {
		return nil, err
	}
	defer closeInstance(cur)
	state, down, err := s.code.Downgrade(ctx, to.Version(), cur)
	if err != nil {
		return nil, err
	}
	return to.Load(ctx, state, down)
}

// Commit makes the change of the machine ref, which the caller has
// suspended again, to the code given to Prepare: it puts the prepared
// instance in place if the machine has handled no event since Stage (it
// converts the events waiting in its mailbox, as a change does), and
// otherwise makes the whole change on the data as it is now, as
// [ChangeSuspended] does. It returns what ChangeSuspended returns. Call
// Prepare first, and [Stager.Release] after the machine is resumed.
func (s *Stager) Commit(ctx context.Context, ref actor.Ref) error {
	if s.to == nil {
		return errors.New("fsm: Stager.Commit without Prepare")
	}
	if ref != s.ref || !s.prepared {
		s.dropPrepared() // Commit on another machine: make the whole change
	}
	s.ctx = ctx
	err := actor.ChangeCodeQueued(ctx, ref, s.commitFn)
	s.ctx = nil
	return err
}

// commit runs on the suspended machine.
func (s *Stager) commit(b actor.Behavior, q []actor.Queued) (actor.Behavior, []any, error) {
	m, ok := b.(*machine)
	if !ok {
		return b, nil, ErrNotMachine
	}
	if !s.prepared || m.undo != s.mark || len(m.timers) != len(s.u.payloads) ||
		!s.reload && len(m.postponed) != len(s.converted) {
		// Staged and handled an event since (which dropped the
		// marker), or never staged: the whole change.
		if s.reload {
			return m, nil, m.reload(s.ctx, s.to)
		}
		msgs, err := m.change(s.ctx, s.to, s.down, q)
		return m, msgs, err
	}
	u := s.u
	var msgs []any
	if !s.reload && len(q) > 0 {
		err := protect(func() error {
			var err error
			msgs, err = convertQueued(s.ctx, s.to, q, u)
			return err
		})
		if err != nil {
			return m, nil, &UpgradeError{Machine: m.code.Machine(), ID: m.id, From: m.code.Version(), To: s.to.Version(), Down: s.down, Err: err}
		}
	}
	postponed, payloads := s.converted, s.payloads
	if s.reload {
		postponed, payloads = m.postponed, nil // kept as they are
	}
	m.install(s.to, s.in, postponed, payloads, u)
	s.in, s.u, s.converted, s.prepared = nil, nil, nil, false
	return m, msgs, nil
}

// Release drops what the Stager holds of the last machine: it closes a
// prepared instance that Commit did not put in place, and lets go of the
// copied data and events (keeping its buffers). Call it once the machine
// is resumed: closing a plugin-hosted instance is a round trip.
func (s *Stager) Release() {
	s.dropPrepared()
	s.ref, s.staged, s.to = actor.Ref{}, false, nil
	s.code, s.flags, s.copied = nil, nil, nil
	clear(s.postponed)
	clear(s.timers)
	s.postponed, s.timers, s.data = s.postponed[:0], s.timers[:0], s.data[:0]
}

// dropPrepared drops what Prepare made and Commit did not install.
func (s *Stager) dropPrepared() {
	if s.in != nil {
		closeInstance(s.in)
	}
	clear(s.payloads)
	s.in, s.u, s.converted, s.payloads, s.prepared = nil, nil, nil, s.payloads[:0], false
}
