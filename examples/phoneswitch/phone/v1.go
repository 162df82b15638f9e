package phone

import (
	"strconv"

	"github.com/hotline-go/hotline/examples/phoneswitch/protocol"
	"github.com/hotline-go/hotline/fsm"
)

// DataV1 is v1's data: the call in flat fields. Peer is empty when there
// is no call, and then Outgoing and ConnectedAt are zero.
type DataV1 struct {
	Number      string // this phone's number, the machine's ID
	Dialled     string // the digits keyed in dialing
	Peer        string // the other phone of the call, ringing or connected
	Outgoing    bool   // this phone placed the call
	ConnectedAt int64  // unix milliseconds when the call was connected; 0 before
	FramesIn    uint64 // frames received, over the phone's life
	FramesOut   uint64 // frames sent, over the phone's life
	Calls       uint64 // calls connected, over the phone's life
}

func (d DataV1) idle() DataV1 {
	d.Dialled, d.Peer, d.Outgoing, d.ConnectedAt = "", "", false, 0
	return d
}

func (d DataV1) dir() string {
	if d.Outgoing {
		return DirOut
	}
	return DirIn
}

// V1 returns version v1 of the phone machine.
func V1() *fsm.Machine[DataV1] {
	m := fsm.Define(Name, "v1", Off, DataV1{})
	// The first version: it reads no other version's data (v2's
	// downgrade writes v1's), so an image of v2 given to v1 fails instead
	// of being read as v1's data.
	m.UpgradesFromVersions()
	m.InitFunc(func(id string) (string, DataV1) { return Off, DataV1{Number: id} })
	keep := func(d DataV1, o Output) fsm.Result[DataV1] { return fsm.Keep(d, fsm.Reply(o)) }
	next := func(s string, d DataV1, o Output) fsm.Result[DataV1] { return fsm.Next(s, d, fsm.Reply(o)) }
	ignore := func(d DataV1) fsm.Result[DataV1] { return keep(d, Output{}) }

	// What every state does unless its own cell says otherwise.
	fsm.OnAny(m, func(_ OffHook, d DataV1) fsm.Result[DataV1] { return keep(d, errLine(protocol.CodeWrongState)) })
	fsm.OnAny(m, func(_ Key, d DataV1) fsm.Result[DataV1] { return keep(d, errLine(protocol.CodeWrongState)) })
	fsm.OnAny(m, func(_ SendAudio, d DataV1) fsm.Result[DataV1] { return keep(d, errLine(protocol.CodeNoCall)) })
	fsm.OnAny(m, func(_ OnHook, d DataV1) fsm.Result[DataV1] { return next(Off, d.idle(), lines(protocol.OnHook{})) })
	fsm.OnAny(m, func(r Ring, d DataV1) fsm.Result[DataV1] {
		return keep(d, signal(r.From, Signal{Kind: SigBusy, Payload: protocol.BusyBusy}))
	})
	fsm.OnAny(m, func(_ Ringing, d DataV1) fsm.Result[DataV1] { return ignore(d) })
	fsm.OnAny(m, func(_ Busy, d DataV1) fsm.Result[DataV1] { return ignore(d) })
	fsm.OnAny(m, func(_ Answered, d DataV1) fsm.Result[DataV1] { return ignore(d) })
	fsm.OnAny(m, func(_ PeerAudio, d DataV1) fsm.Result[DataV1] { return ignore(d) })
	fsm.OnAny(m, func(_ Hangup, d DataV1) fsm.Result[DataV1] { return ignore(d) })

	// off
	fsm.On(m, Off, func(_ OffHook, d DataV1) fsm.Result[DataV1] {
		d = d.idle()
		return next(Dialing, d, lines(protocol.DialTone{}))
	})
	fsm.On(m, Off, func(r Ring, d DataV1) fsm.Result[DataV1] {
		d.Peer, d.Outgoing = r.From, false
		return next(Connecting, d, signal(r.From, Signal{Kind: SigRinging}, protocol.Ring{Number: r.From}))
	})

	// dialing
	fsm.On(m, Dialing, func(k Key, d DataV1) fsm.Result[DataV1] {
		if k.Key != "#" {
			if len(d.Dialled) >= protocol.MaxNumber {
				return keep(d, errLine(protocol.CodeTooManyDigits))
			}
			d.Dialled += k.Key
			return keep(d, Output{})
		}
		if !protocol.ValidNumber(d.Dialled) {
			return next(Disconnecting, d.idle(), lines(protocol.Busy{Reason: protocol.BusyUnknown}))
		}
		callee := d.Dialled
		d = d.idle()
		d.Peer, d.Outgoing = callee, true
		return next(Connecting, d, signal(callee, Signal{Kind: SigRing}))
	})

	// connecting
	fsm.On(m, Connecting, func(r Ringing, d DataV1) fsm.Result[DataV1] {
		if r.From != d.Peer || !d.Outgoing {
			return ignore(d)
		}
		return keep(d, lines(protocol.Ringback{Number: d.Peer}))
	})
	fsm.On(m, Connecting, func(b Busy, d DataV1) fsm.Result[DataV1] {
		if b.From != d.Peer || !d.Outgoing {
			return ignore(d)
		}
		return next(Disconnecting, d.idle(), lines(protocol.Busy{Reason: b.Reason}))
	})
	fsm.On(m, Connecting, func(o OffHook, d DataV1) fsm.Result[DataV1] {
		if d.Outgoing {
			return keep(d, errLine(protocol.CodeWrongState))
		}
		d.ConnectedAt = o.At
		d.Calls++
		return next(InProgress, d, signal(d.Peer, Signal{Kind: SigAnswered, At: o.At}, protocol.Connected{Number: d.Peer}))
	})
	fsm.On(m, Connecting, func(a Answered, d DataV1) fsm.Result[DataV1] {
		if a.From != d.Peer || !d.Outgoing {
			return ignore(d)
		}
		d.ConnectedAt = a.At
		d.Calls++
		return next(InProgress, d, lines(protocol.Connected{Number: d.Peer}))
	})

	// in_progress
	fsm.On(m, InProgress, func(a SendAudio, d DataV1) fsm.Result[DataV1] {
		d.FramesOut++
		return keep(d, signal(d.Peer, Signal{Kind: SigAudio, Seq: a.Seq, Payload: a.Payload}))
	})
	fsm.On(m, InProgress, func(a PeerAudio, d DataV1) fsm.Result[DataV1] {
		if a.From != d.Peer {
			return ignore(d)
		}
		d.FramesIn++
		return keep(d, lines(protocol.Audio{Seq: a.Seq, Payload: a.Payload}))
	})

	// A call, ringing or connected, ends for both ends.
	for _, s := range []string{Connecting, InProgress} {
		fsm.On(m, s, func(_ OnHook, d DataV1) fsm.Result[DataV1] {
			return next(Off, d.idle(), signal(d.Peer, Signal{Kind: SigHangup}, protocol.OnHook{}))
		})
		fsm.On(m, s, func(h Hangup, d DataV1) fsm.Result[DataV1] {
			if h.From != d.Peer {
				return ignore(d)
			}
			return next(Disconnecting, d.idle(), lines(protocol.Hangup{}))
		})
	}

	// STATUS, in every state; codec=hd when the FlagHDAudio flag is on.
	for _, s := range States {
		fsm.OnFlags(m, s, func(_ Status, d DataV1, f fsm.Flags) fsm.Result[DataV1] {
			st := protocol.StatusLine{Number: d.Number, State: s, Version: "v1"}
			if d.Dialled != "" {
				st.Fields = append(st.Fields, protocol.Field{Key: "dialled", Value: d.Dialled})
			}
			if d.Peer != "" {
				st.Fields = append(st.Fields, protocol.Field{Key: "peer", Value: d.Peer}, protocol.Field{Key: "dir", Value: d.dir()})
			}
			st.Fields = append(st.Fields, counters(d.Calls, d.FramesIn, d.FramesOut)...)
			st.Fields = appendCodec(st.Fields, f)
			return keep(d, lines(st))
		})
	}
	return m
}

// FlagHDAudio is the feature flag that the phone reads: a phone for which
// it is on shows codec=hd at the end of its STATUS line (wide-band audio,
// shipped dark behind the flag; a phone for which it is off shows no
// codec=). Both versions read it, in process and in a plugin alike; set it
// with `phoneswitch ctl flags hd-audio on|off|N%`.
const FlagHDAudio = "hd-audio"

// appendCodec appends codec=hd to a STATUS line's fields if [FlagHDAudio]
// is on for the phone.
func appendCodec(fields []protocol.Field, f fsm.Flags) []protocol.Field {
	if !f.On(FlagHDAudio) {
		return fields
	}
	return append(fields, protocol.Field{Key: "codec", Value: "hd"})
}

func counters(calls, in, out uint64) []protocol.Field {
	return []protocol.Field{
		{Key: "calls", Value: strconv.FormatUint(calls, 10)},
		{Key: "frames_in", Value: strconv.FormatUint(in, 10)},
		{Key: "frames_out", Value: strconv.FormatUint(out, 10)},
	}
}
