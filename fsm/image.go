package fsm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/internal/msgpackcheck"
)

// An Image is everything a suspended machine holds, in a form that can
// leave the process: its snapshot (version, state, data), its ID and tags,
// its running timeouts with the time each has left, its postponed events
// and the events waiting in its mailbox, every payload as msgpack. A binary
// restart takes one with [CaptureSuspended] in the old process and starts
// the machine again from it with [FromImage] in the new one.
type Image struct {
	Snapshot
	ID        string
	Tags      map[string]string
	Timeouts  []TimeoutImage // in the order they were set
	Postponed []EventImage   // oldest first
	Queued    []EventImage   // the mailbox, oldest first
	// Captured is when the image was taken: each timeout's Remaining
	// counts from it. [FromImage] does not read it (a time crosses no
	// process with its monotonic reading): a caller that restores the
	// image later takes the time elapsed since off each Remaining first,
	// as a binary restart's handoff does.
	Captured time.Time
}

// An EventImage is an event as msgpack: its kind, the name it is
// dispatched by ([EventName]) and its payload.
type EventImage struct {
	Kind    Kind
	Name    string
	Payload []byte
}

// A TimeoutImage is a running timeout: its kind, its name (of a named
// [Timeout]), the time it has left at [Image.Captured] (0 or less once it
// is due: -Remaining is how long overdue), its event, and whether it had
// fired with its event waiting in the mailbox, and where.
type TimeoutImage struct {
	Kind      Kind
	Name      string
	Remaining time.Duration
	Event     EventImage
	// Fired reports that the timeout had fired and its event waited in
	// the mailbox, behind the first Ahead events of [Image.Queued].
	Fired bool
	Ahead int
}

// An EventDecoder is a [Code] that can turn an [EventImage] back into the
// payload its handler takes: [*Machine] is one. [FromImage] needs one to
// restore a machine that holds events.
type EventDecoder interface {
	// DecodeEvent returns the payload of the event called name, encoded
	// as msgpack by version from of the machine: through the event's
	// [UpgradeEvent] handler if from is another version and it has one.
	// It returns an error wrapping ErrUnknownEvent for a name this version
	// has no handler for, and ErrBadEvent for a payload it cannot decode.
	DecodeEvent(ctx context.Context, from, name string, payload []byte) (any, error)
}

// DecodeEvent decodes an event's payload; see [EventDecoder].
func (m *Machine[D]) DecodeEvent(_ context.Context, from, name string, payload []byte) (any, error) {
	if name == "nil" {
		var v any
		if err := decode(payload, &v); err != nil || v != nil {
			return nil, fmt.Errorf("%w: %s %s: nil event with payload", ErrBadEvent, m.name, m.version)
		}
		return nil, nil
	}
	e := m.table().byName[name]
	if e == nil {
		return nil, fmt.Errorf("%w %s in %s %s", ErrUnknownEvent, name, m.name, m.version)
	}
	var v any
	err := protect(func() (err error) {
		if from != m.version && e.upgrade != nil {
			if err = msgpackcheck.Check(payload); err == nil {
				v, err = e.upgrade(payload)
			}
			return err
		}
		v, err = e.decode(payload)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %s from %s to %v: %w", ErrBadEvent, name, from, e.typ, err)
	}
	return v, nil
}

// CaptureSuspended returns the [Image] of a machine that the caller has
// suspended with [actor.Suspend]: what it holds is then exact, as nothing
// runs it until [actor.Resume]. The machine is not changed: resumed, it goes
// on as if nothing happened. Calls held by the machine (postponed, or
// waiting in its mailbox) are imaged as events of kind [KindCall], whose
// callers stay behind. It returns actor.ErrNotSuspended if the machine is
// not suspended, ErrNotMachine for another actor, ErrBadData for a
// payload or data that does not encode, and ErrSignalQueued, naming them,
// for an actor.Exit or an actor.Down waiting in the mailbox.
func CaptureSuspended(ctx context.Context, ref actor.Ref) (Image, error) {
	queued, err := actor.QueuedMessages(ctx, ref)
	if err == nil {
		err = refuseSignals(queued)
	}
	if err != nil {
		return Image{}, fmt.Errorf("fsm: capture %v: %w", ref, err)
	}
	var img Image
	err = actor.Inspect(ctx, ref, func(b actor.Behavior) error {
		m, ok := b.(*machine)
		if !ok {
			return ErrNotMachine
		}
		var err error
		img, err = m.image(time.Now(), queued)
		return err
	})
	if err != nil {
		return Image{}, fmt.Errorf("fsm: capture %v: %w", ref, err)
	}
	return img, nil
}

func imageEvent(ev Event) (EventImage, error) {
	b, err := encode(ev.Payload)
	if err != nil {
		return EventImage{}, fmt.Errorf("%w: event %s: %w", ErrBadData, ev.Name(), err)
	}
	return EventImage{Kind: ev.Kind, Name: ev.Name(), Payload: b}, nil
}

// image describes the machine as of now, with queued, the messages in its
// mailbox: its events, and the messages of timeouts that have fired (a
// stale one, of a timeout cancelled or set again since, is left out, as
// the machine would ignore it).
func (m *machine) image(now time.Time, queued []actor.Queued) (Image, error) {
	data, err := m.in.Encode()
	if err != nil {
		return Image{}, fmt.Errorf("%w: %w", ErrBadData, err)
	}
	img := Image{
		Snapshot: Snapshot{Machine: m.code.Machine(), Version: m.code.Version(), State: m.state, Data: data},
		ID:       m.id, Tags: maps.Clone(m.tags), Captured: now,
	}
	var fired map[timeoutMsg]int // the fired timeouts' places: how many queued events before each
	for _, q := range queued {
		if tm, ok := q.Msg.(timeoutMsg); ok {
			if fired == nil {
				fired = make(map[timeoutMsg]int)
			}
			fired[tm] = len(img.Queued)
			continue
		}
		e, ok := queuedEvent(q)
		if !ok {
			continue
		}
		ev, err := imageEvent(e)
		if err != nil {
			return Image{}, err
		}
		img.Queued = append(img.Queued, ev)
	}
	for _, t := range m.timers {
		ev, err := imageEvent(Event{Kind: t.msg.kind, Payload: t.payload})
		if err != nil {
			return Image{}, err
		}
		var left time.Duration
		if d, ok := deadline(t.handle); ok {
			left = d.Sub(now)
		}
		ahead, ok := fired[t.msg]
		img.Timeouts = append(img.Timeouts, TimeoutImage{Kind: t.msg.kind, Name: t.msg.name, Remaining: left, Event: ev, Fired: ok, Ahead: ahead})
	}
	for _, it := range m.postponed {
		ev, err := imageEvent(it.ev)
		if err != nil {
			return Image{}, err
		}
		img.Postponed = append(img.Postponed, ev)
	}
	return img, nil
}

// FromImage starts the machine from img, as [CaptureSuspended] took it in
// another process: in its state and with its data (loaded as they are if
// img is of the code's version, else through the code's UPGRADE from
// img.Version), with its ID and tags (which override [WithID] and
// [WithTags]), its timeouts running for the Remaining time they had left,
// its postponed events, and the events of its mailbox sent to it, in
// order, before Start returns. A timeout that had fired is handled in its
// place among those events (behind Ahead of them); one that is due
// (Remaining 0 or less) and had not fired, after them, as its timer's
// message would have come after the events already waiting. Timeouts
// handled at one place go by deadline (Remaining), then in the order set.
// No enter handler runs: the machine had entered its state already. The
// code must be an [EventDecoder] if img holds events. The default is to
// start from the code's initial state; FromImage overrides [FromSnapshot].
func FromImage(img Image) StartOption {
	return func(c *startConfig) { c.image = &img }
}

// restored is what Init puts back into a machine started from an Image.
type restored struct {
	timers    []TimeoutImage
	payloads  []any
	postponed []item

	queued int // the number of queued events

	// due is set by restore: the messages of the timeouts that had fired
	// or are due, for startImage to send among the queued events.
	due []dueMsg
}

// A dueMsg is the message of a restored timeout that is due, to be sent
// behind the first ahead queued events.
type dueMsg struct {
	ahead int
	left  time.Duration
	msg   timeoutMsg
}

// queuedTimer is the handle of a restored timeout whose message waits to
// be sent among the queued events: it is due at at, and has no timer to
// stop.
type queuedTimer struct{ at time.Time }

func (t queuedTimer) due() time.Time { return t.at }

// restore sets the timeouts and the postponed events of a machine started
// from an Image, at now: a timeout with time left runs for it; one that
// had fired or is due is recorded in r.due, with a handle that is due when
// it was, for its message to be sent in its place.
func (c *core) restore(sh shell, r *restored, now time.Time) {
	c.state = c.in.State()
	for i, t := range r.timers {
		if t.Remaining > 0 && !t.Fired {
			c.setTimer(sh, t.Kind, t.Name, t.Remaining, r.payloads[i])
			continue
		}
		c.cancelTimer(sh, t.Kind, t.Name)
		c.gen++
		msg := timeoutMsg{kind: t.Kind, name: t.Name, gen: c.gen}
		c.timers = append(c.timers, timer{msg: msg, payload: r.payloads[i], handle: queuedTimer{at: now.Add(t.Remaining)}})
		ahead := r.queued
		if t.Fired {
			ahead = min(max(t.Ahead, 0), r.queued)
		}
		r.due = append(r.due, dueMsg{ahead: ahead, left: t.Remaining, msg: msg})
	}
	slices.SortStableFunc(r.due, func(a, b dueMsg) int {
		return cmp.Or(cmp.Compare(a.ahead, b.ahead), cmp.Compare(a.left, b.left))
	})
	c.postponed = r.postponed
}

func startImage(ctx context.Context, sys *actor.System, code Code, cfg *startConfig) (actor.Ref, error) {
	img := cfg.image
	var in Instance
	fail := func(err error) (actor.Ref, error) {
		closeInstance(in) // made, and never run
		return actor.Ref{}, fmt.Errorf("fsm: start %s %s from image of %s %s: %w", code.Machine(), code.Version(), img.Machine, img.ID, err)
	}
	if img.Machine != code.Machine() {
		return fail(fmt.Errorf("%w: image of %s", ErrWrongMachine, img.Machine))
	}
	err := protect(func() (err error) {
		if img.Version == code.Version() {
			in, err = code.Load(ctx, img.State, img.Data)
		} else {
			in, err = code.Upgrade(ctx, img.Version, img.State, img.Data)
		}
		return err
	})
	if err != nil {
		return fail(err)
	}
	dec, _ := code.(EventDecoder)
	decodeEv := func(e EventImage) (Event, error) {
		if dec == nil {
			return Event{}, fmt.Errorf("%w: %s: code %T cannot decode events", ErrBadEvent, e.Name, code)
		}
		var p any
		err := protect(func() (err error) {
			p, err = dec.DecodeEvent(ctx, img.Version, e.Name, e.Payload)
			return err
		})
		return Event{Kind: e.Kind, Payload: p}, err
	}
	r := &restored{timers: img.Timeouts, payloads: make([]any, len(img.Timeouts)), queued: len(img.Queued)}
	for i, t := range img.Timeouts {
		ev, err := decodeEv(t.Event)
		if err != nil {
			return fail(err)
		}
		r.payloads[i] = ev.Payload
	}
	for _, e := range img.Postponed {
		ev, err := decodeEv(e)
		if err != nil {
			return fail(err)
		}
		r.postponed = append(r.postponed, item{ev: ev})
	}
	queued := make([]any, len(img.Queued))
	for i, e := range img.Queued {
		ev, err := decodeEv(e)
		if err != nil {
			return fail(err)
		}
		queued[i] = ev.Payload
	}
	m := &machine{core: core{code: code, id: img.ID, tags: maps.Clone(img.Tags), flags: cfg.flags}, restored: r}
	m.setIn(in)
	m.bindFlags(in)
	ref, err := sys.Spawn(m, cfg.spawn...)
	if err != nil {
		closeInstance(in) // Init failed: the machine never ran
		return ref, err
	}
	// Init has run (in Spawn, on this goroutine): r.due is set.
	due := r.due
	for i := 0; i <= len(queued); i++ {
		for len(due) > 0 && due[0].ahead == i {
			if err := actor.Send(ref, due[0].msg); err != nil {
				return ref, errors.Join(fmt.Errorf("fsm: start from image: timeout: %w", err), actor.Stop(ctx, ref, actor.Shutdown))
			}
			due = due[1:]
		}
		if i == len(queued) {
			break
		}
		if err := actor.Send(ref, queued[i]); err != nil {
			return ref, errors.Join(fmt.Errorf("fsm: start from image: queued event: %w", err), actor.Stop(ctx, ref, actor.Shutdown))
		}
	}
	return ref, nil
}
