package plugin

import (
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/internal/wire"
)

// ActionsRoundTrip carries acts as a plugin sends them and the host reads
// them back.
func ActionsRoundTrip(acts []fsm.Action) ([]fsm.Action, error) {
	ws, err := encodeActions(acts)
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
