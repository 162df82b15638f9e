package plugin

import (
	"context"

	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/internal/wire"
)

// ActionsRoundTrip carries acts as a plugin sends them and the host reads
// them back.
func ActionsRoundTrip(acts []fsm.Action) ([]fsm.Action, error) {
	sc := getScratch()
	defer putScratch(sc)
	ws, err := encodeActions(sc, acts)
	if err != nil {
		return nil, err
	}
	r := wire.MachineResult{Actions: ws}
	var back wire.MachineResult
	if err := back.Decode(r.Append(nil)); err != nil {
		return nil, err
	}
	return decodeActions(back.Actions)
}

// ServeHandle is the plugin side's handling of one call's body, as
// pluginrpc hands it over.
func ServeHandle(codes []fsm.Code, method string, body []byte) ([]byte, error) {
	return newServer(codes).handle(context.Background(), "k", method, body)
}

// NewTestServer returns the plugin side's handler for codes.
func NewTestServer(codes ...fsm.Code) func(method string, body []byte) ([]byte, error) {
	s := newServer(codes)
	return func(method string, body []byte) ([]byte, error) {
		return s.handle(context.Background(), "k", method, body)
	}
}

// HostEncode is the host side's encoding of an event into a call's body;
// it returns the body's size.
func HostEncode(state string, data []byte, ev fsm.Event) (int, error) {
	s := getScratch()
	defer putScratch(s)
	in := &instance{state: state, data: data}
	call, err := in.eventCall(s, ev)
	if err != nil {
		return 0, err
	}
	call.Version = "v1"
	s.body = call.Append(s.body[:0])
	return len(s.body), nil
}

// HostDecode is the host side's decoding of a result's body.
func HostDecode(out []byte) (string, []fsm.Action, error) {
	sc := getScratch()
	defer putScratch(sc)
	var res wire.MachineResult
	if err := res.DecodeWith(out, &sc.strs); err != nil {
		return "", nil, err
	}
	acts, err := decodeActions(res.Actions)
	return res.State, acts, err
}

// DecodeValue is the host's decoding of a reply.
var DecodeValue = decodeValue
