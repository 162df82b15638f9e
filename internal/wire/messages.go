package wire

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ProtocolVersion is the version of the messages and frames of this
// package. A host and a plugin speak to each other only if theirs are
// equal: the version is negotiated in go-plugin's handshake, then checked
// again in [Hello] and [Welcome]. Any change to an encoding below is a new
// ProtocolVersion. 2 added MachineCall's flags; 3 the pool of event
// connections ([Hello].Conns, [Auth].Conn).
const ProtocolVersion = 3

// MaxConns is the largest pool of event connections a [Hello] may ask for.
const MaxConns = 64

// MaxFrameSize is the largest message, in bytes, that a frame may carry.
const MaxFrameSize = 16 << 20

// TokenSize is the length of the random token that authenticates the host on
// the event socket.
const TokenSize = 32

// Errors returned by the decoders.
var (
	// ErrMalformed is wrapped by every decoding error: bytes that are not
	// the msgpack of the expected message.
	ErrMalformed = errors.New("wire: malformed message")

	// ErrFrameTooLarge is returned by [AppendFrame] and [Reader.Next] for a
	// frame longer than [MaxFrameSize].
	ErrFrameTooLarge = errors.New("wire: frame too large")
)

// Type is the first element of every message.
type Type uint8

// The message types.
const (
	TypeHello    Type = 1
	TypeWelcome  Type = 2
	TypeAuth     Type = 3
	TypeRequest  Type = 4
	TypeResponse Type = 5
)

func (t Type) String() string {
	switch t {
	case TypeHello:
		return "Hello"
	case TypeWelcome:
		return "Welcome"
	case TypeAuth:
		return "Auth"
	case TypeRequest:
		return "Request"
	case TypeResponse:
		return "Response"
	case TypeMachineCall:
		return "MachineCall"
	case TypeMachineResult:
		return "MachineResult"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Hello is the argument of the control RPC that opens the event socket: the
// host's protocol version, the directory, owned by the host (mode 0700),
// in which the plugin must create the socket, and how many connections the
// host will make to it (1 to [MaxConns]).
type Hello struct {
	Protocol  int
	SocketDir string
	Conns     int
}

// Append appends the msgpack of h to b.
func (h *Hello) Append(b []byte) []byte {
	b = appendArrayLen(b, 4)
	b = appendUint(b, uint64(TypeHello))
	b = appendUint(b, uint64(h.Protocol))
	b = appendStr(b, h.SocketDir)
	return appendUint(b, uint64(max(h.Conns, 0)))
}

// Decode sets h from the msgpack in b. A count of connections outside 1 to
// [MaxConns] is malformed.
func (h *Hello) Decode(b []byte) error {
	d := decoder{b: b, msg: "Hello"}
	d.header(TypeHello, 4)
	h.Protocol = d.protocol()
	h.SocketDir = d.str("socketDir")
	if n := d.uint("conns"); d.err == nil && (n < 1 || n > MaxConns) {
		d.fail("conns", "%d connections, want 1 to %d", n, MaxConns)
	} else {
		h.Conns = int(n)
	}
	return d.end()
}

// Welcome is the plugin's answer to [Hello]: its protocol version, the
// machine and the versions of its code that it serves, the path of the
// event socket it listens on, and the token the host must present there.
type Welcome struct {
	Protocol int
	Machine  string
	Versions []string
	Socket   string
	Token    []byte
}

// Append appends the msgpack of w to b.
func (w *Welcome) Append(b []byte) []byte {
	b = appendArrayLen(b, 6)
	b = appendUint(b, uint64(TypeWelcome))
	b = appendUint(b, uint64(w.Protocol))
	b = appendStr(b, w.Machine)
	b = appendArrayLen(b, len(w.Versions))
	for _, v := range w.Versions {
		b = appendStr(b, v)
	}
	b = appendStr(b, w.Socket)
	return appendBin(b, w.Token)
}

// Decode sets w from the msgpack in b. Token aliases b.
func (w *Welcome) Decode(b []byte) error {
	d := decoder{b: b, msg: "Welcome"}
	d.header(TypeWelcome, 6)
	w.Protocol = d.protocol()
	w.Machine = d.str("machine")
	n := d.arrayLen("versions")
	if n > uint64(len(b)) { // each element takes at least one byte
		d.fail("versions", "%d elements in %d bytes", n, len(b))
	}
	w.Versions = nil
	if d.err == nil && n > 0 {
		w.Versions = make([]string, n)
		for i := range w.Versions {
			w.Versions[i] = d.str("versions")
		}
	}
	w.Socket = d.str("socket")
	w.Token = d.raw("token")
	return d.end()
}

// Auth is the first frame the host sends on each connection to the event
// socket: the token from [Welcome], and the connection's index in the
// pool (0 to [Hello].Conns-1), by which the control plane's nudge names it.
type Auth struct {
	Token []byte
	Conn  int
}

// Append appends the msgpack of a to b.
func (a *Auth) Append(b []byte) []byte {
	b = appendArrayLen(b, 3)
	b = appendUint(b, uint64(TypeAuth))
	b = appendBin(b, a.Token)
	return appendUint(b, uint64(max(a.Conn, 0)))
}

// Decode sets a from the msgpack in b. Token aliases b. An index of
// [MaxConns] or more is malformed.
func (a *Auth) Decode(b []byte) error {
	d := decoder{b: b, msg: "Auth"}
	d.header(TypeAuth, 3)
	a.Token = d.raw("token")
	if n := d.uint("conn"); d.err == nil && n >= MaxConns {
		d.fail("conn", "index %d, want below %d", n, MaxConns)
	} else {
		a.Conn = int(n)
	}
	return d.end()
}

// Request is one call from the host to the plugin.
type Request struct {
	// ID names the call; the plugin's [Response] carries it back. IDs are
	// unique among the calls in flight on one socket.
	ID uint64

	// Key is the ordering key (a machine's identity): the plugin runs the
	// requests of one key one at a time, in the order they arrived, and
	// those of different keys concurrently.
	Key string

	// Method says what to do with Body.
	Method string

	// Timeout is how long the host waits for the answer, counted from when
	// it sent the request; 0 means no limit. The plugin gives its handler a
	// context with this deadline.
	Timeout time.Duration

	// Body is the argument, opaque to this package.
	Body []byte
}

// Append appends the msgpack of r to b.
func (r *Request) Append(b []byte) []byte {
	b = appendArrayLen(b, 6)
	b = appendUint(b, uint64(TypeRequest))
	b = appendUint(b, r.ID)
	b = appendStr(b, r.Key)
	b = appendStr(b, r.Method)
	b = appendUint(b, uint64(max(r.Timeout, 0)))
	return appendBin(b, r.Body)
}

// Decode sets r from the msgpack in b. Body aliases b.
func (r *Request) Decode(b []byte) error { return r.DecodeWith(b, nil) }

// DecodeWith is Decode, with the key and the method interned in strs (if
// not nil).
func (r *Request) DecodeWith(b []byte, strs *Strings) error {
	d := decoder{b: b, msg: "Request", strs: strs}
	d.header(TypeRequest, 6)
	r.ID = d.uint("id")
	r.Key = d.str("key")
	r.Method = d.str("method")
	t := d.uint("timeout")
	if t > math.MaxInt64 {
		d.fail("timeout", "%d overflows a duration", t)
	}
	r.Timeout = time.Duration(t)
	r.Body = d.raw("body")
	return d.end()
}

// Status says how a request ended.
type Status uint8

// The statuses of a [Response].
const (
	// StatusOK: the handler returned Body.
	StatusOK Status = 0
	// StatusError: the handler returned an error, whose text is Message.
	StatusError Status = 1
	// StatusPanic: the handler panicked; Message is the panic value as
	// text, Stack the goroutine's stack. The plugin process goes on.
	StatusPanic Status = 2
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusError:
		return "error"
	case StatusPanic:
		return "panic"
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// Response is the plugin's answer to the [Request] with the same ID.
type Response struct {
	ID      uint64
	Status  Status
	Body    []byte
	Message string
	Stack   string
}

// Append appends the msgpack of r to b.
func (r *Response) Append(b []byte) []byte {
	b = appendArrayLen(b, 6)
	b = appendUint(b, uint64(TypeResponse))
	b = appendUint(b, r.ID)
	b = appendUint(b, uint64(r.Status))
	b = appendBin(b, r.Body)
	b = appendStr(b, r.Message)
	return appendStr(b, r.Stack)
}

// Decode sets r from the msgpack in b. Body aliases b.
func (r *Response) Decode(b []byte) error {
	d := decoder{b: b, msg: "Response"}
	d.header(TypeResponse, 6)
	r.ID = d.uint("id")
	s := d.uint("status")
	if d.err == nil && s > uint64(StatusPanic) {
		d.fail("status", "unknown status %d", s)
	}
	r.Status = Status(s)
	r.Body = d.raw("body")
	r.Message = d.str("message")
	r.Stack = d.str("stack")
	return d.end()
}

func (d *decoder) protocol() int {
	v := d.uint("protocol")
	if v > math.MaxInt32 {
		d.fail("protocol", "%d is out of range", v)
		return 0
	}
	return int(v)
}
