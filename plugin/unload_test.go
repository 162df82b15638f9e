package plugin_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	tm "github.com/hotline-go/hotline/internal/plugintest/machine"
	"github.com/hotline-go/hotline/plugin"
)

// The process of a plugin stops when its last machine stops or changes
// its code away from it, and starts again for the next machine.
func TestProcessStopsWithItsLastMachine(t *testing.T) {
	ctx := t.Context()
	p := load(t)
	v1, v2 := code(t, p, "v1"), code(t, p, "v2")
	sys := system(t)

	first := p.PID()
	require.NotZero(t, first)
	a, err := fsm.Start(ctx, sys, v1, fsm.WithID("a"))
	require.NoError(t, err)
	b, err := fsm.Start(ctx, sys, v2, fsm.WithID("b"))
	require.NoError(t, err)

	require.NoError(t, actor.Stop(ctx, a, actor.Normal))
	require.Equal(t, first, p.PID(), "b still runs the plugin's code")

	require.NoError(t, actor.Stop(ctx, b, actor.Normal))
	require.Zero(t, p.PID())
	requireGone(t, first)

	// The next machine starts a new process, and runs as before.
	c, err := fsm.Start(ctx, sys, v1, fsm.WithID("c"))
	require.NoError(t, err)
	second := p.PID()
	require.NotZero(t, second)
	require.NotEqual(t, first, second)
	require.NoError(t, fsm.Cast(c, tm.Incr{By: 2}))
	n, err := fsm.Call(ctx, c, tm.Get{})
	require.NoError(t, err)
	got, err := plugin.As[tm.Count](n)
	require.NoError(t, err)
	require.Equal(t, 2, got.N)

	// Changing c's code to an in-process version leaves the process
	// unused once the change can no longer be reverted (c handled an
	// event).
	require.NoError(t, fsm.ChangeCode(ctx, c, tm.V2()))
	require.Equal(t, second, p.PID(), "the plugin's instance is kept for a Revert")
	require.NoError(t, fsm.Cast(c, tm.Incr{By: 1}))
	require.NoError(t, fsm.Sync(ctx, c))
	require.Zero(t, p.PID())
	requireGone(t, second)
	inf, err := fsm.Inspect(ctx, c)
	require.NoError(t, err)
	require.Equal(t, "v2", inf.Version)
}

// An instance made outside a machine holds the process until it is closed.
func TestInstanceOutsideAMachineHoldsTheProcess(t *testing.T) {
	ctx := t.Context()
	p := load(t)
	in, err := code(t, p, "v1").New(ctx, "x")
	require.NoError(t, err)
	pid := p.PID()
	require.NotZero(t, pid)
	_, _, err = in.Handle(fsm.Event{Kind: fsm.KindCast, Payload: tm.Incr{By: 1}})
	require.NoError(t, err)

	closer, ok := in.(interface{ Close() error })
	require.True(t, ok, "a plugin's instance is an io.Closer")
	require.NoError(t, closer.Close())
	require.Zero(t, p.PID())
	requireGone(t, pid)
	require.NoError(t, closer.Close(), "closing again does nothing")

	// Its data stays on the host.
	data, err := in.Encode()
	require.NoError(t, err)
	again, err := code(t, p, "v1").Load(ctx, in.State(), data)
	require.NoError(t, err)
	require.NotZero(t, p.PID())
	require.NoError(t, again.(interface{ Close() error }).Close())
}
