package plugin_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	tm "github.com/hotline-go/hotline/internal/plugintest/machine"
	"github.com/hotline-go/hotline/plugin"
)

func quiet() plugin.Option { return plugin.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))) }

// load loads the test plugin, closed at the end of the test.
func load(t *testing.T, opts ...plugin.Option) *plugin.Plugin { return loadB(t, opts...) }

func loadB(t testing.TB, opts ...plugin.Option) *plugin.Plugin {
	t.Helper()
	sum, err := plugin.FileChecksum(testPlugin)
	require.NoError(t, err)
	p, err := plugin.Load(t.Context(), testPlugin, sum, append([]plugin.Option{quiet()}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		pid := p.PID()
		require.NoError(t, p.Close())
		requireGone(t, pid)
	})
	return p
}

func code(t *testing.T, p *plugin.Plugin, version string) fsm.Code {
	t.Helper()
	c, err := p.Code(version)
	require.NoError(t, err)
	return c
}

func system(t *testing.T) *actor.System {
	t.Helper()
	sys := actor.NewSystem()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, sys.Shutdown(ctx))
	})
	return sys
}

// requireGone checks that no process has the id pid.
func requireGone(t testing.TB, pid int) {
	t.Helper()
	if pid == 0 {
		return
	}
	require.Eventually(t, func() bool {
		return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
	}, 5*time.Second, 10*time.Millisecond, "process %d still exists", pid)
}

// script drives a machine through every kind of action and returns what
// its callers got and its final snapshot.
func script(t *testing.T, ctx context.Context, ref actor.Ref) ([]any, fsm.Snapshot) {
	t.Helper()
	var got []any
	call := func(ev any) {
		v, err := fsm.Call(ctx, ref, ev)
		require.NoError(t, err)
		switch v.(type) {
		case string:
		default: // a Count, or its msgpack map from a plugin
			c, err := plugin.As[tm.Count](v)
			require.NoError(t, err)
			v = c
		}
		got = append(got, v)
	}
	require.NoError(t, fsm.Cast(ref, tm.Incr{By: 2}))
	require.NoError(t, fsm.Cast(ref, tm.Incr{By: 3}))
	call(tm.Get{})
	call(tm.Arm{After: 20 * time.Millisecond})        // a state timeout, an enter handler
	require.NoError(t, fsm.Cast(ref, tm.Incr{By: 1})) // postponed until the timeout fires
	require.Eventually(t, func() bool {
		inf, err := fsm.Inspect(ctx, ref)
		require.NoError(t, err)
		return inf.State == "idle"
	}, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, fsm.Sync(ctx, ref))
	call(tm.Get{})
	_, err := fsm.Call(ctx, ref, "no such event")
	require.ErrorIs(t, err, fsm.ErrUnknownEvent)
	inf, err := fsm.Inspect(ctx, ref)
	require.NoError(t, err)
	return got, inf.Snapshot()
}

func TestSameAsInProcess(t *testing.T) {
	ctx := t.Context()
	sys := system(t)
	p := load(t)
	require.Equal(t, "counter", p.Machine())
	require.Equal(t, []string{"v1", "v2"}, p.Versions())

	local, err := fsm.Start(ctx, sys, tm.V1(), fsm.WithID("a"))
	require.NoError(t, err)
	remote, err := fsm.Start(ctx, sys, code(t, p, "v1"), fsm.WithID("b"))
	require.NoError(t, err)

	wantReplies, want := script(t, ctx, local)
	gotReplies, got := script(t, ctx, remote)
	require.Equal(t, wantReplies, gotReplies)
	require.Equal(t, want, got)
	require.Equal(t, []any{tm.Count{N: 5}, "armed", tm.Count{N: 1011}}, gotReplies)

	// Stop crosses with its reason's text, after the reply.
	v, err := fsm.Call(ctx, remote, tm.Quit{})
	require.NoError(t, err)
	require.Equal(t, "bye", v)
	reason, err := actor.Wait(ctx, remote)
	require.NoError(t, err)
	require.EqualError(t, reason, tm.ErrQuit.Error())
}

func TestUpgradeAcrossProcesses(t *testing.T) {
	ctx := t.Context()
	sys := system(t)
	p := load(t)
	v1 := tm.V1()
	ref, err := fsm.Start(ctx, sys, v1)
	require.NoError(t, err)
	require.NoError(t, fsm.Cast(ref, tm.Incr{By: 4}))
	require.NoError(t, fsm.Sync(ctx, ref)) // handled by v1

	// in-process v1 -> plugin v2
	require.NoError(t, fsm.ChangeCode(ctx, ref, code(t, p, "v2")))
	require.NoError(t, fsm.Cast(ref, tm.Incr{By: 1})) // v2 counts double
	v, err := fsm.Call(ctx, ref, tm.Get{})
	require.NoError(t, err)
	c, err := plugin.As[tm.Count](v)
	require.NoError(t, err)
	require.Equal(t, tm.Count{N: 6, State: "v2"}, c)

	// plugin v2 -> in-process v1
	require.NoError(t, fsm.ChangeCode(ctx, ref, v1, fsm.AsDowngrade()))
	v, err = fsm.Call(ctx, ref, tm.Get{})
	require.NoError(t, err)
	require.Equal(t, tm.Count{N: 6}, v)
	inf, err := fsm.Inspect(ctx, ref)
	require.NoError(t, err)
	var d tm.Data1
	require.NoError(t, plugin.Event{Raw: inf.Data}.Decode(&d))
	require.Equal(t, []string{"incr", "upgraded from v1", "incr2", "downgraded to v1"}, d.Seen)

	// in-process v1 -> plugin v2 -> plugin v1, in one process
	require.NoError(t, fsm.ChangeCode(ctx, ref, code(t, p, "v2")))
	require.NoError(t, fsm.ChangeCode(ctx, ref, code(t, p, "v1"), fsm.AsDowngrade()))
	v, err = fsm.Call(ctx, ref, tm.Get{})
	require.NoError(t, err)
	c, err = plugin.As[tm.Count](v)
	require.NoError(t, err)
	require.Equal(t, tm.Count{N: 6}, c)
}

func TestPanicEndsOnlyItsMachine(t *testing.T) {
	ctx := t.Context()
	sys := system(t)
	p := load(t)
	v1 := code(t, p, "v1")
	a, err := fsm.Start(ctx, sys, v1)
	require.NoError(t, err)
	b, err := fsm.Start(ctx, sys, v1)
	require.NoError(t, err)
	pid := p.PID()

	require.NoError(t, fsm.Cast(a, tm.Boom{}))
	reason, err := actor.Wait(ctx, a)
	require.NoError(t, err)
	var pe *plugin.PanicError
	require.ErrorAs(t, reason, &pe)
	require.Equal(t, "boom", pe.Value)
	require.Contains(t, pe.Stack, "plugintest/machine.V1")

	require.NoError(t, fsm.Cast(b, tm.Incr{By: 1}))
	v, err := fsm.Call(ctx, b, tm.Get{})
	require.NoError(t, err)
	n, err := plugin.As[tm.Count](v)
	require.NoError(t, err)
	require.Equal(t, 1, n.N)
	require.Equal(t, pid, p.PID(), "the plugin process survived")
}

func TestKilledPluginLosesNothing(t *testing.T) {
	ctx := t.Context()
	sys := system(t)
	p := load(t, plugin.WithRestartBackoff(time.Millisecond, 10*time.Millisecond), plugin.WithRedeliveries(5))
	ref, err := fsm.Start(ctx, sys, code(t, p, "v1"))
	require.NoError(t, err)
	const n = 200
	killed := 0
	for i := range n {
		require.NoError(t, fsm.Cast(ref, tm.Incr{By: 1}))
		if i%50 == 25 {
			require.NoError(t, fsm.Sync(ctx, ref)) // a process is running
			pid := p.PID()
			if pid != 0 {
				require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
				killed++
			}
		}
	}
	v, err := fsm.Call(ctx, ref, tm.Get{})
	require.NoError(t, err)
	c, err := plugin.As[tm.Count](v)
	require.NoError(t, err)
	require.Equal(t, n, c.N, "every event counted once")
	require.Positive(t, killed)
}

func TestCrashLoopStopsTheMachine(t *testing.T) {
	ctx := t.Context()
	sys := system(t)
	p := load(t, plugin.WithRestartBackoff(time.Millisecond, time.Millisecond), plugin.WithRedeliveries(1), plugin.WithMaxRestarts(1))
	ref, err := fsm.Start(ctx, sys, code(t, p, "v1"))
	require.NoError(t, err)
	// Crash kills the process on each delivery: the machine stops with
	// ErrCrashLoop, for its supervisor to decide.
	require.NoError(t, fsm.Cast(ref, tm.Crash{}))
	reason, err := actor.Wait(ctx, ref)
	require.NoError(t, err)
	require.ErrorIs(t, reason, plugin.ErrCrashLoop)
}

func TestLoadErrors(t *testing.T) {
	ctx := t.Context()
	sum, err := plugin.FileChecksum(testPlugin)
	require.NoError(t, err)
	bad := append([]byte{}, sum...)
	bad[0] ^= 0xff

	_, err = plugin.Load(ctx, testPlugin, bad, quiet())
	require.ErrorIs(t, err, plugin.ErrChecksum)
	_, err = plugin.Load(ctx, testPlugin+".missing", sum, quiet())
	require.ErrorIs(t, err, plugin.ErrNotFound)
	_, err = plugin.Load(ctx, testPlugin, sum, quiet(), plugin.WithMachine("phone"))
	require.ErrorIs(t, err, plugin.ErrWrongMachine)

	p := load(t)
	_, err = p.Code("v9")
	require.ErrorIs(t, err, plugin.ErrNoVersion)
	require.ErrorContains(t, err, "v9")
}

func TestLoaderUnloadsWithTheLastUser(t *testing.T) {
	ctx := t.Context()
	sys := system(t)
	l := plugin.NewLoader(quiet())
	t.Cleanup(func() { require.NoError(t, l.Close()) })
	sum, err := plugin.FileChecksum(testPlugin)
	require.NoError(t, err)
	p1, err := l.Load(ctx, testPlugin, sum)
	require.NoError(t, err)
	p2, err := l.Load(ctx, testPlugin, sum)
	require.NoError(t, err)
	require.Equal(t, 1, l.Loaded())
	pid := p1.PID()
	require.Equal(t, pid, p2.PID(), "one process for both")

	ref, err := fsm.Start(ctx, sys, code(t, p2, "v2"))
	require.NoError(t, err)
	require.NoError(t, p1.Close())
	_, err = fsm.Call(ctx, ref, tm.Get{})
	require.NoError(t, err, "p2 keeps the process")
	require.NoError(t, actor.Stop(ctx, ref, nil))
	require.NoError(t, p2.Close())
	require.Equal(t, 0, l.Loaded())
	requireGone(t, pid)
}

// Incr is the host's own type for the plugin's event of that name.
type Incr struct {
	By    int
	Extra string // the plugin's type has no such field: ignored
}

func TestHostEventTypesDispatchByName(t *testing.T) {
	ctx := t.Context()
	sys := system(t)
	p := load(t)
	ref, err := fsm.Start(ctx, sys, code(t, p, "v1"))
	require.NoError(t, err)
	require.NoError(t, fsm.Cast(ref, Incr{By: 7, Extra: "x"}))
	v, err := fsm.Call(ctx, ref, tm.Get{})
	require.NoError(t, err)
	c, err := plugin.As[tm.Count](v)
	require.NoError(t, err)
	require.Equal(t, 7, c.N)
}

func TestClosedPluginStopsItsMachines(t *testing.T) {
	ctx := t.Context()
	sys := system(t)
	sum, err := plugin.FileChecksum(testPlugin)
	require.NoError(t, err)
	p, err := plugin.Load(ctx, testPlugin, sum, quiet())
	require.NoError(t, err)
	pid := p.PID()
	ref, err := fsm.Start(ctx, sys, code(t, p, "v1"))
	require.NoError(t, err)
	require.NoError(t, p.Close())
	requireGone(t, pid)
	require.NoError(t, fsm.Cast(ref, tm.Incr{By: 1}))
	reason, err := actor.Wait(ctx, ref)
	require.NoError(t, err)
	require.ErrorIs(t, reason, plugin.ErrClosed)
}

// A plugin that hangs in a handler past the call timeout is killed and
// restarted; the event is delivered again, and the machine's data is
// whole.
func TestHungPluginLosesNothing(t *testing.T) {
	ctx := t.Context()
	sys := system(t)
	p := load(t, plugin.WithCallTimeout(300*time.Millisecond), plugin.WithRestartBackoff(time.Millisecond, time.Millisecond))
	ref, err := fsm.Start(ctx, sys, code(t, p, "v1"))
	require.NoError(t, err)
	require.NoError(t, fsm.Cast(ref, tm.Incr{By: 5}))
	hung := p.PID()

	v, err := fsm.Call(ctx, ref, tm.HangOnce{Path: filepath.Join(t.TempDir(), "hung")})
	require.NoError(t, err)
	c, err := plugin.As[tm.Count](v)
	require.NoError(t, err)
	require.Equal(t, 6, c.N, "the data from before the hang, and the event once")
	requireGone(t, hung)
	require.NotEqual(t, hung, p.PID())
}
