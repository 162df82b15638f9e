package plugin

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/internal/pluginrpc"
	"github.com/hotline-go/hotline/internal/wire"
)

// Serve serves versions of one machine's code from this process: it is
// the whole main of a plugin binary.
//
//	func main() { plugin.Serve(phoneV1, phoneV2) }
//
// Each version is any [fsm.Code], usually a [*fsm.Machine] declared as for
// an in-process machine. Event payloads are decoded into the types the
// code's handlers take when the code is an [fsm.EventDecoder] (as a
// *fsm.Machine is); else, and for an event no handler takes, the handler
// gets an [Event]. Serve returns when the host stops the plugin or is
// gone. It panics, at setup, if codes is empty, names two machines or one
// version twice. If the process was not started by a Hotline host, Serve
// prints why to stderr and exits with status 1.
//
// Nothing may write to stdout before Serve: its first line is the
// handshake with the host.
//
// If the environment variable HOTLINE_PLUGIN_CPUPROFILE names a file, the
// process writes a CPU profile (runtime/pprof) of its serving to that path
// with ".<pid>" appended, once Serve returns (so when the host stops the
// plugin, not when it kills it). The variable reaches the plugin from the
// host's environment. HOTLINE_PLUGIN_TRACE ([EnvTrace]) does the same with
// an execution trace (runtime/trace).
func Serve(codes ...fsm.Code) {
	s := newServer(codes)
	stop := startProfile(os.Getenv(EnvCPUProfile))
	stopTrace := startTrace(os.Getenv(EnvTrace))
	err := pluginrpc.Serve(s.manifest, s.handle)
	stopTrace()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "plugin:", err)
		os.Exit(1)
	}
}

// server is the plugin side: the codes it serves, by version.
type server struct {
	manifest pluginrpc.Manifest
	codes    map[string]fsm.Code
}

func newServer(codes []fsm.Code) *server {
	if len(codes) == 0 {
		panic("plugin: Serve needs at least one version of a machine's code")
	}
	s := &server{manifest: pluginrpc.Manifest{Machine: codes[0].Machine()}, codes: make(map[string]fsm.Code, len(codes))}
	for _, c := range codes {
		if c.Machine() != s.manifest.Machine {
			panic(fmt.Sprintf("plugin: Serve given two machines, %q and %q", s.manifest.Machine, c.Machine()))
		}
		if _, dup := s.codes[c.Version()]; dup {
			panic(fmt.Sprintf("plugin: Serve given version %q of %s twice", c.Version(), s.manifest.Machine))
		}
		s.codes[c.Version()] = c
		s.manifest.Versions = append(s.manifest.Versions, c.Version())
	}
	return s
}

// handle serves one call. A panic in the code is recovered by pluginrpc
// and reaches the host as a panic, which ends the machine.
func (s *server) handle(ctx context.Context, _, method string, body []byte) ([]byte, error) {
	sc := getScratch()
	defer putScratch(sc)
	var call wire.MachineCall
	if err := call.DecodeWith(body, &sc.strs); err != nil {
		return nil, err
	}
	code, ok := s.codes[call.Version]
	if !ok {
		return nil, fmt.Errorf("plugin: %s has no version %q", s.manifest.Machine, call.Version)
	}
	var res wire.MachineResult
	if err := s.run(ctx, sc, code, method, &call, &res); err != nil {
		res = wire.MachineResult{State: call.State, Fail: failOf(err), Message: err.Error()}
	}
	size := 32 + len(res.State) + len(res.Data) + len(res.Message)
	for _, a := range res.Actions {
		size += 24 + len(a.Name) + len(a.Event) + len(a.Value)
	}
	return res.Append(make([]byte, 0, size)), nil
}

// run runs one call; the values of the actions it sets in res alias sc.
func (s *server) run(ctx context.Context, sc *scratch, code fsm.Code, method string, call *wire.MachineCall, res *wire.MachineResult) error {
	var (
		in   fsm.Instance
		acts []fsm.Action
		err  error
	)
	switch method {
	case wire.MethodNew:
		in, err = code.New(ctx, call.Arg)
	case wire.MethodLoad:
		in, err = code.Load(ctx, call.State, call.Data)
	case wire.MethodUpgrade:
		in, err = code.Upgrade(ctx, call.Arg, call.State, call.Data)
	case wire.MethodDowngrade:
		if in, err = code.Load(ctx, call.State, call.Data); err != nil {
			return err
		}
		res.State, res.Data, err = code.Downgrade(ctx, call.Arg, in)
		return err
	case wire.MethodHandle:
		if in, err = code.Load(ctx, call.State, call.Data); err != nil {
			return err
		}
		giveFlags(in, call.Flags)
		var p any
		if p, err = decodeEvent(ctx, code, call.Event, call.Payload); err != nil {
			return err
		}
		_, acts, err = in.Handle(fsm.Event{Kind: fsm.Kind(call.Kind), Payload: p})
	case wire.MethodEnter:
		if in, err = code.Load(ctx, call.State, call.Data); err != nil {
			return err
		}
		acts, err = in.Enter(call.Arg)
	default:
		return fmt.Errorf("plugin: no method %q", method)
	}
	if err != nil {
		return err
	}
	res.State = in.State()
	if res.Data, err = in.Encode(); err != nil {
		return err
	}
	res.Actions, err = encodeActions(sc, acts)
	return err
}

// decodeEvent turns an event's name and msgpack into the payload the
// code's handler takes; an Event if the code cannot, or has no handler.
func decodeEvent(ctx context.Context, code fsm.Code, name string, payload []byte) (any, error) {
	if dec, ok := code.(fsm.EventDecoder); ok {
		p, err := dec.DecodeEvent(ctx, code.Version(), name, payload)
		if !errors.Is(err, fsm.ErrUnknownEvent) {
			return p, err
		}
	}
	return Event{Name: name, Raw: payload}, nil
}

// encodeActions encodes acts for the host; their values alias sc.
func encodeActions(sc *scratch, acts []fsm.Action) ([]wire.MachineAction, error) {
	if len(acts) == 0 {
		return nil, nil
	}
	out := make([]wire.MachineAction, len(acts))
	for i, a := range acts {
		w := wire.MachineAction{Kind: uint8(a.Kind()), Name: a.Name(), After: a.After()}
		var err error
		switch a.Kind() {
		case fsm.ActionReplyError, fsm.ActionStop:
			if e, _ := a.Value().(error); e != nil && !errors.Is(e, actor.Normal) {
				w.Value, err = sc.encode(e.Error())
			}
		case fsm.ActionReply:
			w.Value, err = sc.encode(a.Value())
		case fsm.ActionNextEvent, fsm.ActionStateTimeout, fsm.ActionEventTimeout, fsm.ActionTimeout:
			w.Event = fsm.EventName(a.Value())
			w.Value, err = sc.encode(a.Value())
		}
		if err != nil {
			return nil, fmt.Errorf("%w: action %v: %w", fsm.ErrBadResult, a, err)
		}
		out[i] = w
	}
	return out, nil
}

// failOf classifies an error of the code for the host.
func failOf(err error) wire.Fail {
	switch {
	case errors.Is(err, fsm.ErrUnknownEvent):
		return wire.FailUnknownEvent
	case errors.Is(err, fsm.ErrBadEvent):
		return wire.FailBadEvent
	case errors.Is(err, fsm.ErrBadResult):
		return wire.FailBadResult
	case errors.Is(err, fsm.ErrBadData):
		return wire.FailBadData
	}
	return wire.FailOther
}
