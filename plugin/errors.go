package plugin

import (
	"errors"

	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/internal/pluginrpc"
	"github.com/hotline-go/hotline/internal/wire"
)

// Errors of the host side, matched with [errors.Is]. Those of loading and
// of the transport come wrapped in an error that names the plugin.
var (
	// ErrNotFound: [Load] found no binary at the path.
	ErrNotFound = pluginrpc.ErrNotFound
	// ErrChecksum: the binary's SHA-256 is not the one given to [Load]; it
	// was not run.
	ErrChecksum = pluginrpc.ErrChecksum
	// ErrHandshake: the binary is not a Hotline plugin.
	ErrHandshake = pluginrpc.ErrHandshake
	// ErrProtocol: the plugin was built against another wire protocol.
	ErrProtocol = pluginrpc.ErrProtocol
	// ErrWrongMachine: the plugin serves another machine than the one
	// given with [WithMachine].
	ErrWrongMachine = pluginrpc.ErrWrongMachine
	// ErrStart: the process could not be started for another reason.
	ErrStart = pluginrpc.ErrStart
	// ErrCrashLoop: the plugin keeps dying. A machine whose event died on
	// every delivery, or that needs a process when the plugin gave up,
	// stops with a reason wrapping it, for its supervisor to decide.
	ErrCrashLoop = pluginrpc.ErrCrashLoop
	// ErrClosed: the [Plugin] was closed.
	ErrClosed = pluginrpc.ErrClosed

	// ErrNoVersion: [Plugin.Code] was asked for a version the plugin does
	// not serve.
	ErrNoVersion = errors.New("plugin: no such version")
	// ErrMalformed: the plugin answered bytes that are not a machine
	// result.
	ErrMalformed = errors.New("plugin: malformed result")
)

// PanicError is the exit reason of a machine whose handler panicked in
// the plugin. The plugin process recovered and goes on serving the other
// machines.
type PanicError struct {
	Machine, Version string
	Value            string // the panic value, formatted with %v
	Stack            string // the plugin goroutine's stack at the panic
}

func (e *PanicError) Error() string {
	return "plugin: " + e.Machine + " " + e.Version + ": handler panicked: " + e.Value
}

// RemoteError is an error that a plugin's handler gave in a
// [fsm.ReplyError] or a [fsm.Stop]: only its text crosses the process.
type RemoteError struct{ Message string }

func (e *RemoteError) Error() string { return e.Message }

// codeError is an error of the plugin's code, mapped to fsm's sentinels.
type codeError struct {
	fail wire.Fail
	msg  string
}

func (e *codeError) Error() string { return e.msg }

func (e *codeError) Unwrap() error {
	switch e.fail {
	case wire.FailUnknownEvent:
		return fsm.ErrUnknownEvent
	case wire.FailBadEvent:
		return fsm.ErrBadEvent
	case wire.FailBadResult:
		return fsm.ErrBadResult
	case wire.FailBadData:
		return fsm.ErrBadData
	}
	return nil
}
