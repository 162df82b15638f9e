package pluginrpc

import (
	"errors"
	"strings"
)

// Errors of the host side. Each is returned wrapped in an [*Error] that
// names the plugin; match them with [errors.Is].
var (
	// ErrNotFound: the plugin binary does not exist (it also matches
	// fs.ErrNotExist). From [Client.Start] and the calls that start a
	// process.
	ErrNotFound = errors.New("pluginrpc: plugin binary not found")

	// ErrChecksum: the binary's SHA-256 is not the expected one, or it
	// could not be read; the binary was not run.
	ErrChecksum = errors.New("pluginrpc: checksum mismatch")

	// ErrHandshake: the binary ran but is not a Hotline plugin: it exited,
	// printed something else than go-plugin's handshake line, or did not
	// answer within the start timeout.
	ErrHandshake = errors.New("pluginrpc: handshake failed")

	// ErrProtocol: the plugin speaks another wire.ProtocolVersion than the
	// host. Rebuild the plugin against the host's version of Hotline.
	ErrProtocol = errors.New("pluginrpc: protocol version mismatch")

	// ErrWrongMachine: the plugin serves another machine than the one
	// given with [WithMachine].
	ErrWrongMachine = errors.New("pluginrpc: plugin serves another machine")

	// ErrStart: the plugin process could not be started or connected to,
	// for a reason other than the above; the error says which.
	ErrStart = errors.New("pluginrpc: plugin did not start")

	// ErrPluginDied: the plugin process died (crashed, was killed, broke
	// the stream, sent a malformed message or did not answer in time)
	// while the call was in flight. Nothing was lost on the host: the
	// process is restarted on the next call, and the call may be delivered
	// again. [Client.Do] does so. The error also matches its cause:
	// [ErrTimeout], [ErrMalformed], or the I/O error.
	ErrPluginDied = errors.New("pluginrpc: plugin died")

	// ErrTimeout: the plugin did not answer a call within the call timeout
	// ([WithCallTimeout]). A plugin that does not answer is taken for hung:
	// it is killed and restarted, so the error comes with [ErrPluginDied].
	ErrTimeout = errors.New("pluginrpc: plugin did not answer in time")

	// ErrMalformed: the plugin sent bytes that are not a well-formed
	// message. The stream cannot be trusted after that, so the error comes
	// with [ErrPluginDied].
	ErrMalformed = errors.New("pluginrpc: malformed message from plugin")

	// ErrCrashLoop: the plugin keeps dying. [Client.Do] returns it when a
	// call died on every delivery ([WithRedeliveries]), and every call
	// returns it once the process died or failed to start more than
	// [WithMaxRestarts] times in a row without answering a call between.
	// It wraps the last cause.
	ErrCrashLoop = errors.New("pluginrpc: plugin keeps crashing")

	// ErrTooLarge: a request or response exceeds wire.MaxFrameSize.
	ErrTooLarge = errors.New("pluginrpc: message too large")

	// ErrClosed: the [Client] was closed, or the [Handle] released.
	ErrClosed = errors.New("pluginrpc: closed")

	// ErrSocketDir: the socket directory ([WithSocketDir]) is not usable,
	// for instance because its path leaves no room for a Unix socket name
	// in 108 bytes.
	ErrSocketDir = errors.New("pluginrpc: bad socket directory")
)

// Errors of the plugin side, returned by [Serve].
var (
	// ErrNotLaunched: the process was not started by a Hotline host (run
	// by hand, or by a host of another go-plugin application).
	ErrNotLaunched = errors.New("pluginrpc: not started by a Hotline host")

	// ErrManifest: the [Manifest] given to [Serve] names no machine or no
	// version.
	ErrManifest = errors.New("pluginrpc: bad manifest")
)

// Error is what the host side returns for a failure of the plugin or of the
// transport: it names the plugin and wraps the cause, which matches one of
// the sentinel errors of this package (or a context error).
type Error struct {
	Plugin string // the plugin's name (see [WithName])
	Err    error  // the cause
}

func (e *Error) Error() string {
	return "pluginrpc: plugin " + e.Plugin + ": " + strings.TrimPrefix(e.Err.Error(), "pluginrpc: ")
}

func (e *Error) Unwrap() error { return e.Err }

// RemoteError is the error a plugin's handler returned. Only its text
// crosses the process boundary.
type RemoteError struct {
	Plugin  string
	Message string
}

func (e *RemoteError) Error() string {
	return "pluginrpc: plugin " + e.Plugin + ": " + e.Message
}

// PanicError is what a call returns when the plugin's handler panicked. The
// plugin recovered the panic and goes on serving; the host should treat the
// panic as the failure of the one request (for a machine: its exit reason).
type PanicError struct {
	Plugin string
	Value  string // the panic value, formatted with %v
	Stack  string // the stack of the handler's goroutine at the panic
}

func (e *PanicError) Error() string {
	return "pluginrpc: plugin " + e.Plugin + ": handler panicked: " + e.Value
}

// diedError is the error of every call in flight on a connection that
// died. It matches ErrPluginDied and unwraps to the cause.
type diedError struct{ cause error }

func (e *diedError) Error() string {
	return "pluginrpc: plugin died: " + strings.TrimPrefix(e.cause.Error(), "pluginrpc: ")
}

func (e *diedError) Is(target error) bool { return target == ErrPluginDied }

func (e *diedError) Unwrap() error { return e.cause }
