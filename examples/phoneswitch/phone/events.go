package phone

import (
	"fmt"

	"github.com/hotline-go/hotline/examples/phoneswitch/protocol"
	"github.com/hotline-go/hotline/fsm"
	"github.com/vmihailenco/msgpack/v5"
)

// Name is the machine's name.
const Name = "phone"

// The states, as in DESIGN.md's table.
const (
	Off           = "off"
	Dialing       = "dialing"
	Connecting    = "connecting"
	InProgress    = "in_progress"
	Disconnecting = "disconnecting"
)

// States lists every state.
var States = [...]string{Off, Dialing, Connecting, InProgress, Disconnecting}

// Events from the phone's own line, one per protocol command (REGISTER is
// the switch's business: it starts the machine with the number as its ID).
type (
	// OffHook lifts the handset; At is the switch's clock, in unix
	// milliseconds (a callee's answer is when its call is connected).
	OffHook struct{ At int64 }
	// OnHook puts the handset down.
	OnHook struct{}
	// Key presses "0" to "9" or "#".
	Key struct{ Key string }
	// SendAudio is a frame this phone sends to its peer.
	SendAudio struct {
		Seq     uint64
		Payload string
	}
	// Status asks for the STATUS line.
	Status struct{}
)

// Events from another phone, delivered by the switch from a [Signal].
type (
	// Ring is a call from From.
	Ring struct{ From string }
	// Ringing says the callee From rings.
	Ringing struct{ From string }
	// Busy says the call to From failed, for Reason ("unknown", "busy").
	Busy struct {
		From   string
		Reason string
	}
	// Answered says the callee From answered at At (unix milliseconds).
	Answered struct {
		From string
		At   int64
	}
	// PeerAudio is a frame from the peer From.
	PeerAudio struct {
		From    string
		Seq     uint64
		Payload string
	}
	// Hangup says the peer From hung up.
	Hangup struct{ From string }
)

// Kinds of [Signal].
const (
	SigRing     = "ring"
	SigRinging  = "ringing"
	SigBusy     = "busy"
	SigAnswered = "answered"
	SigAudio    = "audio"
	SigHangup   = "hangup"
)

// A Signal is an event for another phone. It is a plain struct (not an
// interface) so that an [Output] encodes as msgpack when it crosses a
// process.
type Signal struct {
	Kind    string
	At      int64  `msgpack:",omitempty"`
	Seq     uint64 `msgpack:",omitempty"`
	Payload string `msgpack:",omitempty"`
}

// Event returns the event that the signal is for its target, sent by the
// phone from. It returns an error for an unknown kind.
func (s Signal) Event(from string) (any, error) {
	switch s.Kind {
	case SigRing:
		return Ring{From: from}, nil
	case SigRinging:
		return Ringing{From: from}, nil
	case SigBusy:
		return Busy{From: from, Reason: s.Payload}, nil
	case SigAnswered:
		return Answered{From: from, At: s.At}, nil
	case SigAudio:
		return PeerAudio{From: from, Seq: s.Seq, Payload: s.Payload}, nil
	case SigHangup:
		return Hangup{From: from}, nil
	}
	return nil, fmt.Errorf("phone: unknown signal %q", s.Kind)
}

// Output is every handler's reply: the lines for this phone's connection,
// and the signals for the phone To.
type Output struct {
	Lines   []string `msgpack:",omitempty"`
	To      string   `msgpack:",omitempty"`
	Signals []Signal `msgpack:",omitempty"`
}

func lines(rs ...protocol.Reply) Output {
	o := Output{Lines: make([]string, len(rs))}
	for i, r := range rs {
		o.Lines[i] = r.String()
	}
	return o
}

func errLine(code string) Output { return lines(protocol.Error{Code: code}) }

func signal(to string, s Signal, rs ...protocol.Reply) Output {
	o := lines(rs...)
	o.To, o.Signals = to, []Signal{s}
	return o
}

// Peer returns the phone that a phone's machine is in a call with,
// ringing or connected, read from its snapshot (of [V1] or [V2]); "" when
// it has no call. A switch that takes over phones from another process
// (a binary restart) learns from it whom a phone's line was talking to.
// It returns an error wrapping [ErrBadData] for another machine, a
// version it does not know, or data it cannot decode.
func Peer(s fsm.Snapshot) (string, error) {
	if s.Machine != Name {
		return "", fmt.Errorf("%w: a snapshot of %q, not %q", ErrBadData, s.Machine, Name)
	}
	switch s.Version {
	case "v1":
		var d DataV1
		if err := msgpack.Unmarshal(s.Data, &d); err != nil {
			return "", fmt.Errorf("%w: v1: %w", ErrBadData, err)
		}
		return d.Peer, nil
	case "v2":
		var d DataV2
		if err := msgpack.Unmarshal(s.Data, &d); err != nil {
			return "", fmt.Errorf("%w: v2: %w", ErrBadData, err)
		}
		return d.peer(), nil
	}
	return "", fmt.Errorf("%w: unknown version %q", ErrBadData, s.Version)
}
