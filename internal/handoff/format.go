package handoff

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Version is the newest handoff format this build writes and reads; it
// reads every version from [MinVersion] on. Bump it for any change to
// [State] or to the exchange; a new process refuses a header of a version
// it cannot read before the old one lets go of anything.
//
// Version 2 added [State.Releases]; version 3 added [State.Captured],
// [State.Flags] and [Timeout.Fired]. A writer picks the oldest version
// that carries what it has to hand over ([EncodeVersion]), so that a
// process of an older build can take over when nothing needs the newer
// format.
const Version uint16 = 3

// MinVersion is the oldest format this build reads.
const MinVersion uint16 = 1

// Magic begins every handoff.
const Magic = "HLHO"

// Limits of what a reader accepts.
const (
	// MaxBody bounds a State frame's body.
	MaxBody = 1 << 30
	// MaxFiles bounds the file descriptors of one handoff.
	MaxFiles = 1 << 20
	// MaxReason bounds a refusal's or an error's text.
	MaxReason = 4096
)

// Answers of the new process: to the header, and after the state.
const (
	Accept byte = 'K' // header accepted: send the state
	Refuse byte = 'R' // header refused; a reason frame follows
	Ack    byte = 'A' // state restored: the new process takes over
	Fail   byte = 'E' // state not restored; a reason frame follows
)

// Errors of this package, wrapped with what was wrong.
var (
	// ErrFormat is returned for bytes that are not a handoff of [Version]:
	// bad magic, oversized lengths, malformed msgpack, trailing bytes.
	ErrFormat = errors.New("handoff: malformed handoff")
	// ErrVersion is returned by [ReadHeader] for a header of another
	// format version.
	ErrVersion = errors.New("handoff: unsupported format version")
)

// State is what one process hands to the next.
type State struct {
	_msgpack struct{} `msgpack:",as_array"`
	// Machines are the machines, in the order the old process registered
	// them.
	Machines []Machine
	// Conns are the connections; Conns[i] travels as the i-th file.
	Conns []Conn
	// Releases are the release handler's versions, a machine name each
	// (format 2; none in format 1).
	Releases []Release
	// Captured is the instant, on the host's CLOCK_MONOTONIC in
	// nanoseconds (a clock that the old and the new process read alike),
	// from which every Timeout's Remaining counts; 0 if unknown (formats 1
	// and 2, which do not carry it). The new process takes the time
	// elapsed since off each Remaining (format 3).
	Captured int64
	// Flags are the feature flags of the old process's flag set, by name
	// (format 3; none before).
	Flags []Flag
}

// Flag is one feature flag of the old process's set (flags.Status): its
// value and its last change, Old became Value, by Who at When, and
// whether the value came from the flag file.
type Flag struct {
	_msgpack struct{} `msgpack:",as_array"`
	Flag     string
	Value    string // the text form: on, off, N%
	Old      string
	Who      string
	When     int64 // Unix nanoseconds; 0 for none
	File     bool  // the value is the flag file's (the last load named it, no Set since)
}

// Release is what a release handler knows of the versions of one machine
// name: the current and permanent ones, and the earlier current versions
// that rollbacks go back to, oldest first.
type Release struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Machine   string
	Current   string
	Permanent string
	History   []string
}

// Machine is one machine's image (see fsm.Image).
type Machine struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Key       string   // the service's key for the machine, unique in a State
	Machine   string
	Version   string
	ID        string
	Tags      map[string]string
	State     string
	Data      []byte
	Timeouts  []Timeout
	Postponed []Event
	Queued    []Event
}

// Timeout is a running timeout.
type Timeout struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Kind      uint8
	Name      string
	Remaining int64 // nanoseconds from State.Captured; negative if overdue
	Event     Event
	// Fired is 0 for a timeout whose event was not sent yet, and k > 0
	// for one that had fired and whose event waited in the mailbox behind
	// the first k-1 of Queued (format 3; 0 before).
	Fired int64
}

// Event is an event as msgpack.
type Event struct {
	_msgpack struct{} `msgpack:",as_array"`
	Kind     uint8
	Name     string
	Payload  []byte
}

// Conn is a connection: its key, the key of the machine it belongs to
// (empty for none), the bytes read from it but not yet handled, and the
// service's own bytes about it.
type Conn struct {
	_msgpack struct{} `msgpack:",as_array"`
	Key      string
	Owner    string
	Unread   []byte
	Meta     []byte
}

// Encode returns s as msgpack in format [Version], map keys sorted: equal
// States encode to equal bytes.
func Encode(s *State) ([]byte, error) { return EncodeVersion(s, Version) }

// EncodeVersion is [Encode] in format v. Version 1 has no Releases, and
// versions 1 and 2 no Flags: it refuses a State with some. Versions 1 and
// 2 leave out Captured and each Timeout's Fired (a reader of those
// versions arms each timeout with its Remaining as it is).
func EncodeVersion(s *State, v uint16) ([]byte, error) {
	switch {
	case v < MinVersion || v > Version:
		return nil, fmt.Errorf("handoff: encode: %w: %d", ErrVersion, v)
	case v == 1 && len(s.Releases) > 0:
		return nil, fmt.Errorf("handoff: encode: format 1 cannot carry the release handler's versions")
	case v < 3 && len(s.Flags) > 0:
		return nil, fmt.Errorf("handoff: encode: format %d cannot carry feature flags", v)
	}
	b := appendState(make([]byte, 0, size(s)), s, v)
	if len(b) > MaxBody {
		return nil, fmt.Errorf("handoff: encode: state of %d bytes is too large", len(b))
	}
	return b, nil
}

// Decode decodes a State body of any version from [MinVersion] to
// [Version] (each has its number of fields). It returns an error wrapping
// ErrFormat for anything else, never allocates much more than len(b), and
// never panics.
func Decode(b []byte) (State, error) {
	if len(b) == 0 || (b[0] != 0x92 && b[0] != 0x93 && b[0] != 0x95) { // an array of State's fields: two in format 1, three in 2, five in 3
		return State{}, fmt.Errorf("%w: not a state of format %d to %d", ErrFormat, MinVersion, Version)
	}
	r := reader{b: b, total: len(b)}
	s := r.state()
	if r.err != nil {
		return State{}, fmt.Errorf("%w: at byte %d: %w", ErrFormat, r.at, r.err)
	}
	if len(r.b) > 0 {
		return State{}, fmt.Errorf("%w: %d trailing bytes", ErrFormat, len(r.b))
	}
	seen := make(map[string]bool, len(s.Machines))
	for _, m := range s.Machines {
		if seen[m.Key] {
			return State{}, fmt.Errorf("%w: machine key %q twice", ErrFormat, m.Key)
		}
		seen[m.Key] = true
	}
	names := make(map[string]bool, len(s.Flags))
	for _, f := range s.Flags {
		if names[f.Flag] {
			return State{}, fmt.Errorf("%w: flag %q twice", ErrFormat, f.Flag)
		}
		names[f.Flag] = true
	}
	return s, nil
}

// WriteHeader writes the header of a handoff of format version v.
func WriteHeader(w io.Writer, v uint16) error {
	var h [6]byte
	copy(h[:], Magic)
	binary.BigEndian.PutUint16(h[4:], v)
	_, err := w.Write(h[:])
	return err
}

// ReadHeader reads a header and returns its version: an error wrapping
// ErrFormat for bad magic, ErrVersion (with the version) for a version
// older than [MinVersion] or newer than want (the reader's: [Version]).
func ReadHeader(r io.Reader, want uint16) (uint16, error) {
	var h [6]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, fmt.Errorf("handoff: header: %w", err)
	}
	if string(h[:4]) != Magic {
		return 0, fmt.Errorf("%w: bad magic %q", ErrFormat, h[:4])
	}
	v := binary.BigEndian.Uint16(h[4:])
	if v < MinVersion || v > want {
		return v, fmt.Errorf("%w: %d (this build reads %d to %d)", ErrVersion, v, MinVersion, want)
	}
	return v, nil
}

// WriteAnswer writes a one-byte answer and, for Refuse and Fail, the
// reason, as u32 length and text.
func WriteAnswer(w io.Writer, a byte, reason string) error {
	b := []byte{a}
	if a == Refuse || a == Fail {
		if len(reason) > MaxReason {
			reason = reason[:MaxReason]
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(reason)))
		b = append(b, reason...)
	}
	_, err := w.Write(b)
	return err
}

// ReadAnswer reads an answer: the byte, and the reason of a Refuse or a
// Fail.
func ReadAnswer(r io.Reader) (byte, string, error) {
	var a [1]byte
	if _, err := io.ReadFull(r, a[:]); err != nil {
		return 0, "", fmt.Errorf("handoff: answer: %w", err)
	}
	switch a[0] {
	case Accept, Ack:
		return a[0], "", nil
	case Refuse, Fail:
	default:
		return 0, "", fmt.Errorf("%w: answer %#x", ErrFormat, a[0])
	}
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return 0, "", fmt.Errorf("handoff: answer: %w", err)
	}
	l := binary.BigEndian.Uint32(n[:])
	if l > MaxReason {
		return 0, "", fmt.Errorf("%w: reason of %d bytes", ErrFormat, l)
	}
	reason := make([]byte, l)
	if _, err := io.ReadFull(r, reason); err != nil {
		return 0, "", fmt.Errorf("handoff: answer: %w", err)
	}
	return a[0], string(reason), nil
}
