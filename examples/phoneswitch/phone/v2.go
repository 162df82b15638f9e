package phone

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/hotline-go/hotline/examples/phoneswitch/protocol"
	"github.com/hotline-go/hotline/fsm"
	"github.com/vmihailenco/msgpack/v5"
)

// Directions of a [Call].
const (
	DirIn  = "in"
	DirOut = "out"
)

// DataV2 is v2's data: v1's flat call fields become one optional [Call],
// and the counters one [Stats].
type DataV2 struct {
	Number  string
	Dialled string
	Call    *Call // nil when there is no call
	Stats   Stats
}

// Call is a call, ringing or connected.
type Call struct {
	Peer      string
	Direction string // DirIn or DirOut
	Since     int64  // unix milliseconds when connected; 0 while ringing
}

// Stats are a phone's counters over its life.
type Stats struct {
	Calls     uint64
	FramesIn  uint64
	FramesOut uint64
}

// ErrBadData is returned by v2's UPGRADE and downgrade for data they cannot
// convert.
var ErrBadData = errors.New("phone: bad data")

func (d DataV2) idle() DataV2 {
	d.Dialled, d.Call = "", nil
	return d
}

func (d DataV2) with(c Call) DataV2 {
	d.Call = &c
	return d
}

func (d DataV2) peer() string {
	if d.Call == nil {
		return ""
	}
	return d.Call.Peer
}

func (d DataV2) outgoing() bool { return d.Call != nil && d.Call.Direction == DirOut }

// V2 returns version v2 of the phone machine, with its UPGRADE from v1 and
// its downgrade to v1.
func V2() *fsm.Machine[DataV2] {
	m := fsm.Define(Name, "v2", Off, DataV2{})
	m.InitFunc(func(id string) (string, DataV2) { return Off, DataV2{Number: id} })
	keep := func(d DataV2, o Output) fsm.Result[DataV2] { return fsm.Keep(d, fsm.Reply(o)) }
	next := func(s string, d DataV2, o Output) fsm.Result[DataV2] { return fsm.Next(s, d, fsm.Reply(o)) }
	ignore := func(d DataV2) fsm.Result[DataV2] { return keep(d, Output{}) }

	fsm.OnAny(m, func(_ OffHook, d DataV2) fsm.Result[DataV2] { return keep(d, errLine(protocol.CodeWrongState)) })
	fsm.OnAny(m, func(_ Key, d DataV2) fsm.Result[DataV2] { return keep(d, errLine(protocol.CodeWrongState)) })
	fsm.OnAny(m, func(_ SendAudio, d DataV2) fsm.Result[DataV2] { return keep(d, errLine(protocol.CodeNoCall)) })
	fsm.OnAny(m, func(_ OnHook, d DataV2) fsm.Result[DataV2] { return next(Off, d.idle(), lines(protocol.OnHook{})) })
	fsm.OnAny(m, func(r Ring, d DataV2) fsm.Result[DataV2] {
		return keep(d, signal(r.From, Signal{Kind: SigBusy, Payload: protocol.BusyBusy}))
	})
	fsm.OnAny(m, func(_ Ringing, d DataV2) fsm.Result[DataV2] { return ignore(d) })
	fsm.OnAny(m, func(_ Busy, d DataV2) fsm.Result[DataV2] { return ignore(d) })
	fsm.OnAny(m, func(_ Answered, d DataV2) fsm.Result[DataV2] { return ignore(d) })
	fsm.OnAny(m, func(_ PeerAudio, d DataV2) fsm.Result[DataV2] { return ignore(d) })
	fsm.OnAny(m, func(_ Hangup, d DataV2) fsm.Result[DataV2] { return ignore(d) })

	fsm.On(m, Off, func(_ OffHook, d DataV2) fsm.Result[DataV2] {
		return next(Dialing, d.idle(), lines(protocol.DialTone{}))
	})
	fsm.On(m, Off, func(r Ring, d DataV2) fsm.Result[DataV2] {
		d = d.with(Call{Peer: r.From, Direction: DirIn})
		return next(Connecting, d, signal(r.From, Signal{Kind: SigRinging}, protocol.Ring{Number: r.From}))
	})

	fsm.On(m, Dialing, func(k Key, d DataV2) fsm.Result[DataV2] {
		if k.Key != "#" {
			if len(d.Dialled) >= protocol.MaxNumber {
				return keep(d, errLine(protocol.CodeTooManyDigits))
			}
			d.Dialled += k.Key
			return keep(d, Output{})
		}
		callee := d.Dialled
		if !protocol.ValidNumber(callee) {
			return next(Disconnecting, d.idle(), lines(protocol.Busy{Reason: protocol.BusyUnknown}))
		}
		d = d.idle().with(Call{Peer: callee, Direction: DirOut})
		return next(Connecting, d, signal(callee, Signal{Kind: SigRing}))
	})

	fsm.On(m, Connecting, func(r Ringing, d DataV2) fsm.Result[DataV2] {
		if r.From != d.peer() || !d.outgoing() {
			return ignore(d)
		}
		return keep(d, lines(protocol.Ringback{Number: r.From}))
	})
	fsm.On(m, Connecting, func(b Busy, d DataV2) fsm.Result[DataV2] {
		if b.From != d.peer() || !d.outgoing() {
			return ignore(d)
		}
		return next(Disconnecting, d.idle(), lines(protocol.Busy{Reason: b.Reason}))
	})
	fsm.On(m, Connecting, func(o OffHook, d DataV2) fsm.Result[DataV2] {
		if d.Call == nil || d.outgoing() {
			return keep(d, errLine(protocol.CodeWrongState))
		}
		c := *d.Call
		c.Since = o.At
		d = d.with(c)
		d.Stats.Calls++
		return next(InProgress, d, signal(c.Peer, Signal{Kind: SigAnswered, At: o.At}, protocol.Connected{Number: c.Peer}))
	})
	fsm.On(m, Connecting, func(a Answered, d DataV2) fsm.Result[DataV2] {
		if a.From != d.peer() || !d.outgoing() {
			return ignore(d)
		}
		c := *d.Call
		c.Since = a.At
		d = d.with(c)
		d.Stats.Calls++
		return next(InProgress, d, lines(protocol.Connected{Number: c.Peer}))
	})

	fsm.On(m, InProgress, func(a SendAudio, d DataV2) fsm.Result[DataV2] {
		d.Stats.FramesOut++
		return keep(d, signal(d.peer(), Signal{Kind: SigAudio, Seq: a.Seq, Payload: a.Payload}))
	})
	fsm.On(m, InProgress, func(a PeerAudio, d DataV2) fsm.Result[DataV2] {
		if a.From != d.peer() {
			return ignore(d)
		}
		d.Stats.FramesIn++
		return keep(d, lines(protocol.Audio{Seq: a.Seq, Payload: a.Payload}))
	})

	for _, s := range []string{Connecting, InProgress} {
		fsm.On(m, s, func(_ OnHook, d DataV2) fsm.Result[DataV2] {
			return next(Off, d.idle(), signal(d.peer(), Signal{Kind: SigHangup}, protocol.OnHook{}))
		})
		fsm.On(m, s, func(h Hangup, d DataV2) fsm.Result[DataV2] {
			if h.From != d.peer() {
				return ignore(d)
			}
			return next(Disconnecting, d.idle(), lines(protocol.Hangup{}))
		})
	}

	for _, s := range States {
		fsm.OnFlags(m, s, func(_ Status, d DataV2, f fsm.Flags) fsm.Result[DataV2] {
			st := protocol.StatusLine{Number: d.Number, State: s, Version: "v2"}
			if d.Dialled != "" {
				st.Fields = append(st.Fields, protocol.Field{Key: "dialled", Value: d.Dialled})
			}
			if c := d.Call; c != nil {
				st.Fields = append(st.Fields, protocol.Field{Key: "peer", Value: c.Peer}, protocol.Field{Key: "dir", Value: c.Direction})
				if c.Since != 0 {
					st.Fields = append(st.Fields, protocol.Field{Key: "since", Value: strconv.FormatInt(c.Since, 10)})
				}
			}
			st.Fields = append(st.Fields, counters(d.Stats.Calls, d.Stats.FramesIn, d.Stats.FramesOut)...)
			st.Fields = appendCodec(st.Fields, f)
			return keep(d, lines(st))
		})
	}

	m.OnUpgrade(func(from, state string, raw msgpack.RawMessage) (string, DataV2, error) {
		if from != "v1" {
			return "", DataV2{}, fmt.Errorf("%w: no upgrade from %s", ErrBadData, from)
		}
		var old DataV1
		if err := msgpack.Unmarshal(raw, &old); err != nil {
			return "", DataV2{}, fmt.Errorf("%w: %w", ErrBadData, err)
		}
		d, err := FromV1(old)
		return state, d, err
	})
	m.OnDowngrade(func(to, state string, d DataV2) (string, any, error) {
		if to != "v1" {
			return "", nil, fmt.Errorf("%w: no downgrade to %s", ErrBadData, to)
		}
		old, err := d.V1()
		return state, old, err
	})
	return m
}

// FromV1 is v2's UPGRADE of v1's data: the flat call fields become a
// [Call], whose Since is v1's ConnectedAt, unchanged.
func FromV1(old DataV1) (DataV2, error) {
	d := DataV2{
		Number:  old.Number,
		Dialled: old.Dialled,
		Stats:   Stats{Calls: old.Calls, FramesIn: old.FramesIn, FramesOut: old.FramesOut},
	}
	if old.Peer == "" {
		if old.Outgoing || old.ConnectedAt != 0 {
			return DataV2{}, fmt.Errorf("%w: v1 call fields without a peer", ErrBadData)
		}
		return d, nil
	}
	dir := DirIn
	if old.Outgoing {
		dir = DirOut
	}
	return d.with(Call{Peer: old.Peer, Direction: dir, Since: old.ConnectedAt}), nil
}

// V1 is v2's downgrade of its data to v1's.
func (d DataV2) V1() (DataV1, error) {
	old := DataV1{
		Number: d.Number, Dialled: d.Dialled,
		Calls: d.Stats.Calls, FramesIn: d.Stats.FramesIn, FramesOut: d.Stats.FramesOut,
	}
	if c := d.Call; c != nil {
		if c.Peer == "" || (c.Direction != DirIn && c.Direction != DirOut) {
			return DataV1{}, fmt.Errorf("%w: call %+v", ErrBadData, *c)
		}
		old.Peer, old.Outgoing, old.ConnectedAt = c.Peer, c.Direction == DirOut, c.Since
	}
	return old, nil
}
