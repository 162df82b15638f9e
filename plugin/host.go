package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/internal/msgpackcheck"
	"github.com/hotline-go/hotline/internal/pluginrpc"
	"github.com/hotline-go/hotline/internal/wire"
)

// Plugin is a loaded plugin binary: the versions of one machine's code
// that it serves, each an [fsm.Code] ([Plugin.Code]). It is safe for
// concurrent use. Its process runs while a machine runs its code: it stops
// when the last such machine stops or changes code away from it, and
// starts again for the next one (see [Plugin.PID]). Close the Plugin to
// give it up for good.
type Plugin struct {
	c       *pluginrpc.Client
	release func() error
	machine string
	codes   map[string]*code
	keys    atomic.Uint64
}

// Load starts the plugin binary at path, whose SHA-256 must be checksum
// (see [FileChecksum]), and returns what it serves. The process is
// restarted if it dies, and stopped by [Plugin.Close]. Load's errors wrap
// [ErrNotFound], [ErrChecksum], [ErrHandshake], [ErrProtocol],
// [ErrWrongMachine] (with [WithMachine]), [ErrStart] or [ErrCrashLoop], or
// ctx's error.
func Load(ctx context.Context, path string, checksum []byte, opts ...Option) (*Plugin, error) {
	c := pluginrpc.New(path, checksum, rpcOptions(opts)...)
	if err := c.Start(ctx); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	return newPlugin(c, c.Close), nil
}

func newPlugin(c *pluginrpc.Client, release func() error) *Plugin {
	m := c.Manifest()
	p := &Plugin{c: c, release: release, machine: m.Machine, codes: make(map[string]*code, len(m.Versions))}
	for _, v := range m.Versions {
		p.codes[v] = &code{p: p, version: v}
	}
	return p
}

// Loader shares one process per plugin binary among the [Plugin] values
// loaded through it: the process starts with the first Load of a binary
// and stops when the last of its Plugins is closed. It is safe for
// concurrent use; make one with [NewLoader].
type Loader struct{ l *pluginrpc.Loader }

// NewLoader returns a Loader whose plugins get opts (before those of each
// Load).
func NewLoader(opts ...Option) *Loader {
	return &Loader{l: pluginrpc.NewLoader(rpcOptions(opts)...)}
}

// Load is [Load] through the Loader: it starts the binary's process unless
// one runs, and returns a Plugin that holds a share of it.
func (l *Loader) Load(ctx context.Context, path string, checksum []byte, opts ...Option) (*Plugin, error) {
	h, err := l.l.Load(ctx, path, checksum, rpcOptions(opts)...)
	if err != nil {
		return nil, err
	}
	return newPlugin(h.Client(), h.Release), nil
}

// Loaded returns how many plugin binaries have a process.
func (l *Loader) Loaded() int { return l.l.Loaded() }

// Close stops every process of the Loader. Call it before the host exits.
func (l *Loader) Close() error { return l.l.Close() }

// Machine returns the name of the machine the plugin serves.
func (p *Plugin) Machine() string { return p.machine }

// Versions returns the versions the plugin serves, in the order its main
// gave them to [Serve].
func (p *Plugin) Versions() []string { return slices.Clone(p.c.Manifest().Versions) }

// Code returns the code of version, which the plugin serves, or an error
// wrapping [ErrNoVersion]. The Code is used as an in-process one is: with
// [fsm.Start], [fsm.ChangeCode] and the rest.
func (p *Plugin) Code(version string) (fsm.Code, error) {
	c, ok := p.codes[version]
	if !ok {
		return nil, fmt.Errorf("%w: %s serves %s in %v, not %q", ErrNoVersion, p.c.Name(), p.machine, p.Versions(), version)
	}
	return c, nil
}

// Close gives up the plugin: its process stops, unless it was loaded
// through a [Loader] and another Plugin of the same binary remains. The
// machines that run its code then fail their next event (their reason
// wraps [ErrClosed]): change their code first. Closing again does nothing.
func (p *Plugin) Close() error { return p.release() }

// PID returns the id of the plugin's process, 0 if none runs.
func (p *Plugin) PID() int { return p.c.Stats().PID }

// code is one version served by a plugin: an fsm.Code whose instances keep
// the state and data on the host.
type code struct {
	p       *Plugin
	version string
}

var (
	_ fsm.Code         = (*code)(nil)
	_ fsm.EventDecoder = (*code)(nil)
)

func (c *code) Machine() string { return c.p.machine }
func (c *code) Version() string { return c.version }

func (c *code) New(ctx context.Context, id string) (fsm.Instance, error) {
	return c.instance(ctx, wire.MethodNew, &wire.MachineCall{Arg: id})
}

func (c *code) Load(ctx context.Context, state string, data []byte) (fsm.Instance, error) {
	return c.instance(ctx, wire.MethodLoad, &wire.MachineCall{State: state, Data: data})
}

func (c *code) Upgrade(ctx context.Context, from, state string, data []byte) (fsm.Instance, error) {
	return c.instance(ctx, wire.MethodUpgrade, &wire.MachineCall{Arg: from, State: state, Data: data})
}

func (c *code) Downgrade(ctx context.Context, to string, in fsm.Instance) (string, []byte, error) {
	data, err := in.Encode()
	if err != nil {
		return "", nil, err
	}
	var res wire.MachineResult
	key := strconv.FormatUint(c.p.keys.Add(1), 36)
	if err := c.call(ctx, key, wire.MethodDowngrade, &wire.MachineCall{Arg: to, State: in.State(), Data: data}, &res); err != nil {
		return "", nil, err
	}
	return res.State, res.Data, nil
}

// ConvertEvent returns ev unchanged: a payload of any type crosses to the
// plugin as msgpack, and the plugin decodes it by name.
func (c *code) ConvertEvent(_ context.Context, ev fsm.Event) (fsm.Event, error) { return ev, nil }

// DecodeEvent returns the payload as an Event, which the plugin decodes.
func (c *code) DecodeEvent(_ context.Context, _, name string, payload []byte) (any, error) {
	return Event{Name: name, Raw: slices.Clone(payload)}, nil
}

func (c *code) instance(ctx context.Context, method string, call *wire.MachineCall) (fsm.Instance, error) {
	key := call.Arg
	if method != wire.MethodNew || key == "" {
		key = "#" + strconv.FormatUint(c.p.keys.Add(1), 36)
	}
	release := c.p.c.Hold() // before the call: a stop at the last release must not race the start of this one
	var res wire.MachineResult
	if err := c.call(ctx, key, method, call, &res); err != nil {
		release()
		return nil, err
	}
	in := &instance{c: c, key: key, state: res.State, data: res.Data, release: release}
	// An instance made outside a machine (a dry run of an upgrade) may never
	// be closed: its hold goes when it is garbage.
	in.cleanup = runtime.AddCleanup(in, func(release func()) { release() }, release)
	return in, nil
}

// call makes one call of version c's code and decodes its result; a
// failure of the code becomes the error fsm expects.
func (c *code) call(ctx context.Context, key, method string, call *wire.MachineCall, res *wire.MachineResult) error {
	return c.callWith(ctx, key, method, call, res, nil)
}

// callWith is call, with the call's body built in sc and the result's
// strings interned in it, if sc is not nil.
func (c *code) callWith(ctx context.Context, key, method string, call *wire.MachineCall, res *wire.MachineResult, sc *scratch) error {
	call.Version = c.version
	var (
		body []byte
		strs *wire.Strings
	)
	if sc != nil {
		sc.body = call.Append(sc.body[:0])
		body, strs = sc.body, &sc.strs
	} else {
		size := 48 + len(call.State) + len(call.Data) + len(call.Event) + len(call.Payload)
		for _, f := range call.Flags {
			size += 2 + len(f)
		}
		body = call.Append(make([]byte, 0, size))
	}
	out, err := c.p.c.Do(ctx, key, method, body)
	if err != nil {
		return c.hostError(err)
	}
	if err := res.DecodeWith(out, strs); err != nil {
		return fmt.Errorf("%w: %s: %s: %w", ErrMalformed, c.where(), method, err)
	}
	if res.Fail != wire.FailNone {
		return &codeError{fail: res.Fail, msg: res.Message}
	}
	return c.checkResult(method, call, res)
}

// checkResult refuses a result that the machine cannot take as its own: an
// empty state, a state an enter handler moved, or data that is not exactly
// one msgpack value. The plugin is another program: the host keeps the
// machine's data, and must not replace it with what no version can load
// (the machine would fail at its next event, its data lost, and a change
// of code would be committed with it). The error wraps [fsm.ErrBadResult],
// which stops a machine and fails a change of code, and [ErrMalformed].
func (c *code) checkResult(method string, call *wire.MachineCall, res *wire.MachineResult) error {
	var what string
	switch {
	case res.State == "":
		what = "the empty state"
	case method == wire.MethodEnter && res.State != call.State:
		what = fmt.Sprintf("state %q for state %q (an enter handler may not change the state)", res.State, call.State)
	default:
		err := msgpackcheck.Check(res.Data)
		if err == nil {
			return nil
		}
		what = "data that is not one msgpack value: " + err.Error()
	}
	return fmt.Errorf("%w: %w: %s: %s returned %s", fsm.ErrBadResult, ErrMalformed, c.where(), method, what)
}

// where names the code in errors: the machine, the version and the plugin.
func (c *code) where() string {
	return c.p.machine + " " + c.version + " (plugin " + c.p.c.Name() + ")"
}

// hostError turns pluginrpc's errors into this package's.
func (c *code) hostError(err error) error {
	var pe *pluginrpc.PanicError
	if errors.As(err, &pe) {
		return &PanicError{Machine: c.p.machine, Version: c.version, Value: pe.Value, Stack: pe.Stack}
	}
	var re *pluginrpc.RemoteError
	if errors.As(err, &re) {
		return fmt.Errorf("plugin: %s %s: %s", c.p.machine, c.version, re.Message)
	}
	return err
}

// instance is a plugin-hosted machine's Instance: the state and the data
// (msgpack) stay on the host, and every event goes to the plugin with
// them.
//
// An instance holds a share of the plugin's process ([pluginrpc.Client.Hold])
// from its creation until Close, which the fsm runtime calls when the
// machine drops it: when the last instance of a plugin is closed, its
// process stops, and the next machine starts it again.
type instance struct {
	c       *code
	key     string
	state   string
	data    []byte
	release func() // the hold; idempotent
	cleanup runtime.Cleanup
	flags   fsm.Flags // the machine's feature flags (flags.go)
	on      []string  // the names of those on, reused by each event
}

var _ io.Closer = (*instance)(nil)

// Close gives up the instance's share of the plugin's process. The
// instance still answers State and Encode.
func (in *instance) Close() error {
	in.cleanup.Stop()
	in.release()
	return nil
}

func (in *instance) State() string { return in.state }

func (in *instance) Encode() ([]byte, error) { return in.data, nil }

func (in *instance) Handle(ev fsm.Event) (string, []fsm.Action, error) {
	s := getScratch()
	defer putScratch(s)
	call, err := in.eventCall(s, ev)
	if err != nil {
		return in.state, nil, err
	}
	return in.run(s, wire.MethodHandle, &call)
}

// eventCall is the call that carries ev, its payload encoded in s.
func (in *instance) eventCall(s *scratch, ev fsm.Event) (wire.MachineCall, error) {
	call := wire.MachineCall{State: in.state, Data: in.data, Kind: uint8(ev.Kind), Flags: in.flagsOn()}
	if e, ok := ev.Payload.(Event); ok {
		call.Event, call.Payload = e.Name, e.Raw
		return call, nil
	}
	p, err := s.encode(ev.Payload)
	if err != nil {
		return call, fmt.Errorf("%w: %s: %w", fsm.ErrBadEvent, ev.Name(), err)
	}
	call.Event, call.Payload = ev.Name(), p
	return call, nil
}

func (in *instance) Enter(prev string) ([]fsm.Action, error) {
	s := getScratch()
	defer putScratch(s)
	_, acts, err := in.run(s, wire.MethodEnter, &wire.MachineCall{State: in.state, Data: in.data, Arg: prev})
	return acts, err
}

// run calls the plugin with the instance's state and data, and keeps the
// state and data it returns. An Instance has no context: the call is
// bounded by the plugin's call timeout ([WithCallTimeout]). The call's body
// is built in s.body: the transport copies it before Do returns.
func (in *instance) run(s *scratch, method string, call *wire.MachineCall) (string, []fsm.Action, error) {
	var res wire.MachineResult
	if err := in.c.callWith(context.Background(), in.key, method, call, &res, s); err != nil {
		return in.state, nil, err
	}
	acts, err := decodeActions(res.Actions)
	if err != nil {
		return in.state, nil, fmt.Errorf("%w: %s: %s: actions: %w", ErrMalformed, in.c.where(), method, err)
	}
	in.state, in.data = res.State, res.Data
	return in.state, acts, nil
}

func decodeActions(ws []wire.MachineAction) ([]fsm.Action, error) {
	if len(ws) == 0 {
		return nil, nil
	}
	acts := make([]fsm.Action, len(ws))
	for i, w := range ws {
		ev := Event{Name: w.Event, Raw: w.Value}
		switch fsm.ActionKind(w.Kind) {
		case fsm.ActionNone:
		case fsm.ActionReply:
			v, err := decodeValue(w.Value)
			if err != nil {
				return nil, err
			}
			acts[i] = fsm.Reply(v)
		case fsm.ActionReplyError, fsm.ActionStop:
			var err error
			if len(w.Value) > 0 {
				var msg string
				if err := unmarshal(w.Value, &msg); err != nil {
					return nil, err
				}
				err = &RemoteError{Message: msg}
			}
			if fsm.ActionKind(w.Kind) == fsm.ActionStop {
				acts[i] = fsm.Stop(err)
			} else {
				acts[i] = fsm.ReplyError(err)
			}
		case fsm.ActionPostpone:
			acts[i] = fsm.Postpone()
		case fsm.ActionNextEvent:
			acts[i] = fsm.NextEvent(ev)
		case fsm.ActionStateTimeout:
			acts[i] = fsm.StateTimeout(w.After, ev)
		case fsm.ActionCancelStateTimeout:
			acts[i] = fsm.CancelStateTimeout()
		case fsm.ActionEventTimeout:
			acts[i] = fsm.EventTimeout(w.After, ev)
		case fsm.ActionTimeout:
			acts[i] = fsm.Timeout(w.Name, w.After, ev)
		case fsm.ActionCancelTimeout:
			acts[i] = fsm.CancelTimeout(w.Name)
		default:
			return nil, fmt.Errorf("unknown action kind %d", w.Kind)
		}
	}
	return acts, nil
}
