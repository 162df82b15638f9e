package fsm_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/fsm"
)

func TestActionAccessors(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name  string
		a     fsm.Action
		kind  fsm.ActionKind
		tname string
		after time.Duration
		value any
	}{
		{"zero", fsm.Action{}, fsm.ActionNone, "", 0, nil},
		{"reply", fsm.Reply(42), fsm.ActionReply, "", 0, 42},
		{"reply error", fsm.ReplyError(boom), fsm.ActionReplyError, "", 0, boom},
		{"postpone", fsm.Postpone(), fsm.ActionPostpone, "", 0, nil},
		{"next event", fsm.NextEvent("x"), fsm.ActionNextEvent, "", 0, "x"},
		{"state timeout", fsm.StateTimeout(time.Second, "st"), fsm.ActionStateTimeout, "", time.Second, "st"},
		{"cancel state timeout", fsm.CancelStateTimeout(), fsm.ActionCancelStateTimeout, "", 0, nil},
		{"event timeout", fsm.EventTimeout(2*time.Second, "et"), fsm.ActionEventTimeout, "", 2 * time.Second, "et"},
		{"timeout", fsm.Timeout("t", 3*time.Second, "gt"), fsm.ActionTimeout, "t", 3 * time.Second, "gt"},
		{"cancel timeout", fsm.CancelTimeout("t"), fsm.ActionCancelTimeout, "t", 0, nil},
		{"stop", fsm.Stop(boom), fsm.ActionStop, "", 0, boom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.kind, tt.a.Kind())
			require.Equal(t, tt.tname, tt.a.Name())
			require.Equal(t, tt.after, tt.a.After())
			require.Equal(t, tt.value, tt.a.Value())
		})
	}
}
