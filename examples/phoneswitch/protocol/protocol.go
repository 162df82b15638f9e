package protocol

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

const (
	// MaxLine is the longest line, "\n" included, that either side sends.
	MaxLine = 1024
	// MaxPayload is the longest AUDIO payload.
	MaxPayload = 512
	// MinNumber and MaxNumber bound the digits of a phone number.
	MinNumber, MaxNumber = 3, 8
)

// Errors of [ParseCommand], [ParseReply] and [Reader.ReadLine].
var (
	ErrUnknownCommand = errors.New("protocol: unknown command")
	ErrBadArgs        = errors.New("protocol: bad arguments")
	ErrLineTooLong    = errors.New("protocol: line too long")
)

// Error codes: the word after "ERR" in an [Error] reply.
const (
	CodeBadNumber         = "bad-number"
	CodeNumberTaken       = "number-taken"
	CodeNotRegistered     = "not-registered"
	CodeAlreadyRegistered = "already-registered"
	CodeNoCall            = "no-call"
	CodeUnknownCommand    = "unknown-command"
	CodeBadArgs           = "bad-args"
	CodeLineTooLong       = "line-too-long"
	CodeWrongState        = "wrong-state"
	CodeTooManyDigits     = "too-many-digits"
	CodeInternal          = "internal"
)

// Busy reasons.
const (
	BusyUnknown = "unknown"
	BusyBusy    = "busy"
)

// A Command is a line a phone sends to the switch.
type Command interface {
	fmt.Stringer
	command()
}

// A Reply is a line the switch sends to a phone.
type Reply interface {
	fmt.Stringer
	reply()
}

type (
	// Register claims a number for this line: "REGISTER <number>".
	Register struct{ Number string }
	// OffHook lifts the handset: "OFFHOOK".
	OffHook struct{}
	// Key presses a key, "0" to "9" or "#": "KEY <k>".
	Key struct{ Key string }
	// Audio is a frame: "AUDIO <seq> <payload>", both a command and the
	// reply that carries the peer's frame.
	Audio struct {
		Seq     uint64
		Payload string
	}
	// OnHook puts the handset down: "ONHOOK", both a command and its reply.
	OnHook struct{}
	// Status asks for the line's state: "STATUS".
	Status struct{}

	// Registered answers a [Register]: "OK REGISTERED <number>".
	Registered struct{ Number string }
	// DialTone answers an [OffHook] in off: "DIALTONE".
	DialTone struct{}
	// Ringback tells the caller the callee rings: "RINGBACK <callee>".
	Ringback struct{ Number string }
	// Ring tells the callee who calls: "RING <caller>".
	Ring struct{ Number string }
	// Connected tells both ends the call is up: "CONNECTED <peer>".
	Connected struct{ Number string }
	// Busy ends a call attempt: "BUSY unknown" or "BUSY busy".
	Busy struct{ Reason string }
	// Hangup tells a phone its peer hung up: "HANGUP".
	Hangup struct{}
	// StatusLine answers a [Status]:
	// "STATUS <number> <state> <version> key=value...".
	StatusLine struct {
		Number, State, Version string
		Fields                 []Field
	}
	// Error is a refusal: "ERR <code>".
	Error struct{ Code string }
)

// A Field is one key=value of a [StatusLine].
type Field struct{ Key, Value string }

func (Register) command() {}
func (OffHook) command()  {}
func (Key) command()      {}
func (Audio) command()    {}
func (OnHook) command()   {}
func (Status) command()   {}

func (Registered) reply() {}
func (DialTone) reply()   {}
func (Ringback) reply()   {}
func (Ring) reply()       {}
func (Connected) reply()  {}
func (Busy) reply()       {}
func (Audio) reply()      {}
func (OnHook) reply()     {}
func (Hangup) reply()     {}
func (StatusLine) reply() {}
func (Error) reply()      {}

func (c Register) String() string   { return "REGISTER " + c.Number }
func (OffHook) String() string      { return "OFFHOOK" }
func (c Key) String() string        { return "KEY " + c.Key }
func (c Audio) String() string      { return "AUDIO " + strconv.FormatUint(c.Seq, 10) + " " + c.Payload }
func (OnHook) String() string       { return "ONHOOK" }
func (Status) String() string       { return "STATUS" }
func (r Registered) String() string { return "OK REGISTERED " + r.Number }
func (DialTone) String() string     { return "DIALTONE" }
func (r Ringback) String() string   { return "RINGBACK " + r.Number }
func (r Ring) String() string       { return "RING " + r.Number }
func (r Connected) String() string  { return "CONNECTED " + r.Number }
func (r Busy) String() string       { return "BUSY " + r.Reason }
func (Hangup) String() string       { return "HANGUP" }
func (r Error) String() string      { return "ERR " + r.Code }

func (r StatusLine) String() string {
	var b strings.Builder
	b.WriteString("STATUS ")
	b.WriteString(r.Number)
	b.WriteByte(' ')
	b.WriteString(r.State)
	b.WriteByte(' ')
	b.WriteString(r.Version)
	for _, f := range r.Fields {
		b.WriteByte(' ')
		b.WriteString(f.Key)
		b.WriteByte('=')
		b.WriteString(f.Value)
	}
	return b.String()
}

// Get returns the value of the field key, and whether there is one.
func (r StatusLine) Get(key string) (string, bool) {
	for _, f := range r.Fields {
		if f.Key == key {
			return f.Value, true
		}
	}
	return "", false
}

// ValidNumber says whether s is a phone number: 3 to 8 digits.
func ValidNumber(s string) bool {
	return len(s) >= MinNumber && len(s) <= MaxNumber && allDigits(s)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// validPayload: 1 to MaxPayload printable ASCII bytes, no space.
func validPayload(s string) bool {
	if s == "" || len(s) > MaxPayload {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

func parseSeq(s string) (uint64, bool) {
	if !allDigits(s) {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// fields splits a line on single spaces after trimming its line ending.
// Runs of spaces are not allowed inside a line: they make an empty field.
func fields(line string) []string {
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return nil
	}
	return strings.Split(line, " ")
}

// controlIn reports whether an argument holds a control character (a line
// ending inside a line, a lone "\r", a NUL): no argument of the protocol
// does, and one that did would not format back to the line it came from.
func controlIn(args []string) bool {
	for _, a := range args {
		if strings.ContainsFunc(a, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return true
		}
	}
	return false
}

// ParseCommand reads one command line (with or without its line ending).
// It returns an error matching [ErrUnknownCommand] when the first word is
// not a command, and [ErrBadArgs] when the arguments are malformed: a
// number in REGISTER is only checked for being digits, so that the switch
// can answer "ERR bad-number" for a wrong length.
func ParseCommand(line string) (Command, error) {
	f := fields(line)
	if len(f) == 0 {
		return nil, fmt.Errorf("%w: empty line", ErrUnknownCommand)
	}
	args := f[1:]
	bad := func(why string) error { return fmt.Errorf("%w: %s: %s", ErrBadArgs, f[0], why) }
	if controlIn(args) {
		switch f[0] {
		case "REGISTER", "OFFHOOK", "ONHOOK", "STATUS", "KEY", "AUDIO":
			return nil, bad("a control character in an argument")
		}
		return nil, fmt.Errorf("%w: %.32q", ErrUnknownCommand, f[0])
	}
	switch f[0] {
	case "REGISTER":
		if len(args) != 1 || args[0] == "" {
			return nil, bad("want one number")
		}
		return Register{Number: args[0]}, nil
	case "OFFHOOK", "ONHOOK", "STATUS":
		if len(args) != 0 {
			return nil, bad("want no arguments")
		}
		switch f[0] {
		case "OFFHOOK":
			return OffHook{}, nil
		case "ONHOOK":
			return OnHook{}, nil
		}
		return Status{}, nil
	case "KEY":
		if len(args) != 1 || len(args[0]) != 1 || (args[0] != "#" && !allDigits(args[0])) {
			return nil, bad("want one key, 0-9 or #")
		}
		return Key{Key: args[0]}, nil
	case "AUDIO":
		a, err := parseAudio(args)
		if err != nil {
			return nil, bad(err.Error())
		}
		return a, nil
	}
	return nil, fmt.Errorf("%w: %.32q", ErrUnknownCommand, f[0])
}

func parseAudio(args []string) (Audio, error) {
	if len(args) != 2 {
		return Audio{}, errors.New("want a sequence number and a payload")
	}
	seq, ok := parseSeq(args[0])
	if !ok {
		return Audio{}, errors.New("sequence number is not a decimal counter")
	}
	if !validPayload(args[1]) {
		return Audio{}, fmt.Errorf("payload must be 1 to %d printable bytes without spaces", MaxPayload)
	}
	return Audio{Seq: seq, Payload: args[1]}, nil
}

// ParseReply reads one reply line, as a client does. It returns an error
// matching [ErrUnknownCommand] or [ErrBadArgs] for a line that is not a
// reply of this protocol.
func ParseReply(line string) (Reply, error) {
	f := fields(line)
	if len(f) == 0 {
		return nil, fmt.Errorf("%w: empty line", ErrUnknownCommand)
	}
	args := f[1:]
	bad := func() error { return fmt.Errorf("%w: %.32q", ErrBadArgs, f[0]) }
	one := func() (string, error) {
		if len(args) != 1 || args[0] == "" {
			return "", bad()
		}
		return args[0], nil
	}
	none := func(r Reply) (Reply, error) {
		if len(args) != 0 {
			return nil, bad()
		}
		return r, nil
	}
	if controlIn(args) {
		return nil, bad()
	}
	switch f[0] {
	case "OK":
		if len(args) != 2 || args[0] != "REGISTERED" || !allDigits(args[1]) {
			return nil, bad()
		}
		return Registered{Number: args[1]}, nil
	case "DIALTONE":
		return none(DialTone{})
	case "ONHOOK":
		return none(OnHook{})
	case "HANGUP":
		return none(Hangup{})
	case "RINGBACK", "RING", "CONNECTED":
		n, err := one()
		if err != nil || !allDigits(n) {
			return nil, bad()
		}
		switch f[0] {
		case "RINGBACK":
			return Ringback{Number: n}, nil
		case "RING":
			return Ring{Number: n}, nil
		}
		return Connected{Number: n}, nil
	case "BUSY":
		r, err := one()
		if err != nil {
			return nil, err
		}
		return Busy{Reason: r}, nil
	case "ERR":
		c, err := one()
		if err != nil {
			return nil, err
		}
		return Error{Code: c}, nil
	case "AUDIO":
		a, err := parseAudio(args)
		if err != nil {
			return nil, bad()
		}
		return a, nil
	case "STATUS":
		if len(args) < 3 || args[0] == "" || args[1] == "" || args[2] == "" {
			return nil, bad()
		}
		s := StatusLine{Number: args[0], State: args[1], Version: args[2]}
		for _, kv := range args[3:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, bad()
			}
			s.Fields = append(s.Fields, Field{Key: k, Value: v})
		}
		return s, nil
	}
	return nil, fmt.Errorf("%w: %.32q", ErrUnknownCommand, f[0])
}
