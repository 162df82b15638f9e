package plugin_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/plugin"
)

type ring struct{ N int }

func TestActionsCrossTheWire(t *testing.T) {
	ev := plugin.Event{Name: "ring", Raw: []byte{0x81, 0xa1, 'N', 0x07}}
	tests := []struct {
		name string
		in   fsm.Action
		want fsm.Action
	}{
		{"reply", fsm.Reply("ok"), fsm.Reply("ok")},
		{"reply nil", fsm.Reply(nil), fsm.Reply(nil)},
		{"reply error", fsm.ReplyError(errors.New("busy")), fsm.ReplyError(&plugin.RemoteError{Message: "busy"})},
		{"postpone", fsm.Postpone(), fsm.Postpone()},
		{"next event", fsm.NextEvent(ring{7}), fsm.NextEvent(ev)},
		{"state timeout", fsm.StateTimeout(time.Second, ring{7}), fsm.StateTimeout(time.Second, ev)},
		{"state timeout now", fsm.StateTimeout(-time.Second, ring{7}), fsm.StateTimeout(0, ev)},
		{"cancel state timeout", fsm.CancelStateTimeout(), fsm.CancelStateTimeout()},
		{"event timeout", fsm.EventTimeout(2*time.Millisecond, ring{7}), fsm.EventTimeout(2*time.Millisecond, ev)},
		{"timeout", fsm.Timeout("bell", time.Minute, ring{7}), fsm.Timeout("bell", time.Minute, ev)},
		{"cancel timeout", fsm.CancelTimeout("bell"), fsm.CancelTimeout("bell")},
		{"stop", fsm.Stop(errors.New("done")), fsm.Stop(&plugin.RemoteError{Message: "done"})},
		{"stop normal", fsm.Stop(actor.Normal), fsm.Stop(nil)},
		{"stop nil", fsm.Stop(nil), fsm.Stop(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := plugin.ActionsRoundTrip([]fsm.Action{tt.in})
			require.NoError(t, err)
			require.Equal(t, []fsm.Action{tt.want}, got)
		})
	}
}
