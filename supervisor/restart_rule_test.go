package supervisor_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/supervisor"
)

// Whether a child is restarted, by its restart type and its exit reason:
// OTP's rules, and a child that moved elsewhere (handed over to a new
// process) is never restarted, whatever its type.
func TestShouldRestart(t *testing.T) {
	moved := fmt.Errorf("handed over: %w", actor.Moved)
	cases := []struct {
		reason                          error
		permanent, transient, temporary bool
	}{
		{actor.Normal, true, false, false},
		{actor.Shutdown, true, false, false},
		{fmt.Errorf("stopping: %w", actor.Shutdown), true, false, false},
		{actor.Killed, true, true, false},
		{errors.New("crash"), true, true, false},
		{actor.Moved, false, false, false},
		{moved, false, false, false},
		{errors.Join(actor.Shutdown, moved), false, false, false},
	}
	for _, c := range cases {
		require.Equal(t, c.permanent, supervisor.ShouldRestart(supervisor.Permanent, c.reason), "permanent, %v", c.reason)
		require.Equal(t, c.transient, supervisor.ShouldRestart(supervisor.Transient, c.reason), "transient, %v", c.reason)
		require.Equal(t, c.temporary, supervisor.ShouldRestart(supervisor.Temporary, c.reason), "temporary, %v", c.reason)
	}
}
