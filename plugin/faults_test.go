package plugin_test

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/internal/pluginrpc"
	tm "github.com/hotline-go/hotline/internal/plugintest/machine"
	"github.com/hotline-go/hotline/plugin"
)

// envFault makes the test binary a plugin whose code misbehaves (see
// faulty); its value is the mode.
const envFault = "HOTLINE_PLUGIN_TEST_FAULT"

// serveFaulty is the main of the faulty plugin: package machine's two
// versions, wrapped so that they return what the mode says; in mode
// "garbage", a plugin of machine "counter" v1 that answers every call with
// bytes that are not a machine result.
func serveFaulty(mode string) {
	if mode == "garbage" {
		m := pluginrpc.Manifest{Machine: "counter", Versions: []string{"v1"}}
		err := pluginrpc.Serve(m, func(context.Context, string, string, []byte) ([]byte, error) {
			return []byte{0x97, 0x07}, nil // a MachineResult of 7 fields, which has 6
		})
		if err != nil {
			panic(err)
		}
		return
	}
	plugin.Serve(faulty{Code: tm.V1(), mode: mode}, faulty{Code: tm.V2(), mode: mode})
}

// loadFaulty loads the test binary as the faulty plugin in mode, closed at
// the end of the test.
func loadFaulty(t *testing.T, mode string, opts ...plugin.Option) *plugin.Plugin {
	t.Helper()
	t.Setenv(envFault, mode)
	t.Setenv("GORACE", "atexit_sleep_ms=0") // a -race binary sleeps 1s at exit otherwise
	exe, err := os.Executable()
	require.NoError(t, err)
	sum, err := plugin.FileChecksum(exe)
	require.NoError(t, err)
	p, err := plugin.Load(t.Context(), exe, sum, append([]plugin.Option{quiet(), plugin.WithName("faulty-" + mode)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		pid := p.PID()
		require.NoError(t, p.Close())
		requireGone(t, pid)
	})
	return p
}

// faulty is a version of package machine's code whose instances, in the
// plugin, return a bad result (see bad) where the mode says:
//
//	upgrade-bad-data   UPGRADE returns data that is not one msgpack value
//	upgrade-no-state   UPGRADE returns the empty state
//	handle-bad-data    the event Pad{Note: "fault"} leaves data that is not msgpack
//	handle-no-state    the event Pad{Note: "fault"} leaves the empty state
//	enter-moves-state  an enter handler returns another state than the one entered
type faulty struct {
	fsm.Code
	mode string
}

func (f faulty) DecodeEvent(ctx context.Context, version, name string, payload []byte) (any, error) {
	return f.Code.(fsm.EventDecoder).DecodeEvent(ctx, version, name, payload)
}

func (f faulty) Upgrade(ctx context.Context, from, state string, data []byte) (fsm.Instance, error) {
	in, err := f.Code.Upgrade(ctx, from, state, data)
	if err != nil {
		return nil, err
	}
	b := &bad{Instance: in, mode: f.mode}
	b.bad = f.mode == "upgrade-bad-data" || f.mode == "upgrade-no-state"
	return b, nil
}

func (f faulty) Load(ctx context.Context, state string, data []byte) (fsm.Instance, error) {
	in, err := f.Code.Load(ctx, state, data)
	if err != nil {
		return nil, err
	}
	return &bad{Instance: in, mode: f.mode}, nil
}

// bad is an instance that, once bad, returns what its mode says.
type bad struct {
	fsm.Instance
	mode string
	bad  bool
}

func (b *bad) State() string {
	switch {
	case !b.bad:
	case b.mode == "upgrade-no-state", b.mode == "handle-no-state":
		return ""
	case b.mode == "enter-moves-state":
		return "elsewhere"
	}
	return b.Instance.State()
}

func (b *bad) Encode() ([]byte, error) {
	if b.bad && (b.mode == "upgrade-bad-data" || b.mode == "handle-bad-data") {
		return []byte{0x92, 0x01}, nil // an array of two that holds one
	}
	return b.Instance.Encode()
}

func (b *bad) Handle(ev fsm.Event) (string, []fsm.Action, error) {
	_, acts, err := b.Instance.Handle(ev)
	if p, ok := ev.Payload.(tm.Pad); ok && p.Note == "fault" {
		b.bad = true
	}
	return b.State(), acts, err
}

func (b *bad) Enter(prev string) ([]fsm.Action, error) {
	acts, err := b.Instance.Enter(prev)
	b.bad = b.mode == "enter-moves-state" && b.Instance.State() == "armed"
	return acts, err
}

// An UPGRADE in the plugin that returns bad data or no state fails the
// change of code with a reason that names the plugin and the fault; the
// machine stays on its version with its data as it was.
func TestBadUpgradeResultIsRefused(t *testing.T) {
	for _, tt := range []struct{ mode, text string }{
		{"upgrade-bad-data", "fsm.upgrade returned data that is not one msgpack value"},
		{"upgrade-no-state", "fsm.upgrade returned the empty state"},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			ctx := t.Context()
			sys := system(t)
			p := loadFaulty(t, tt.mode)
			ref, err := fsm.Start(ctx, sys, tm.V1())
			require.NoError(t, err)
			require.NoError(t, fsm.Cast(ref, tm.Incr{By: 4}))

			err = fsm.ChangeCode(ctx, ref, code(t, p, "v2"))
			require.ErrorIs(t, err, fsm.ErrBadResult)
			require.ErrorIs(t, err, plugin.ErrMalformed)
			require.ErrorContains(t, err, "plugin faulty-"+tt.mode)
			require.ErrorContains(t, err, tt.text)

			v, err := fsm.Call(ctx, ref, tm.Get{})
			require.NoError(t, err)
			require.Equal(t, tm.Count{N: 4}, v, "the data as it was")
			inf, err := fsm.Inspect(ctx, ref)
			require.NoError(t, err)
			require.Equal(t, "v1", inf.Version)
		})
	}
}

// An event whose result from the plugin is bad (data that is not msgpack,
// no state, an enter handler that moves) stops the machine at that event,
// with a reason that names the plugin and the fault; the bad result is not
// taken as the machine's.
func TestBadEventResultStopsTheMachine(t *testing.T) {
	for _, tt := range []struct {
		mode, text string
		event      any
		replied    any // the reply, which precedes the enter handler; nil if the call fails
	}{
		{"handle-bad-data", "fsm.handle returned data that is not one msgpack value", tm.Pad{Note: "fault"}, nil},
		{"handle-no-state", "fsm.handle returned the empty state", tm.Pad{Note: "fault"}, nil},
		{"enter-moves-state", `fsm.enter returned state "elsewhere" for state "armed"`, tm.Arm{After: time.Hour}, "armed"},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			ctx := t.Context()
			sys := system(t)
			p := loadFaulty(t, tt.mode)
			ref, err := fsm.Start(ctx, sys, code(t, p, "v1"))
			require.NoError(t, err)
			require.NoError(t, fsm.Cast(ref, tm.Incr{By: 3}))
			v, err := fsm.Call(ctx, ref, tm.Get{})
			require.NoError(t, err)
			c, err := plugin.As[tm.Count](v)
			require.NoError(t, err)
			require.Equal(t, 3, c.N)

			v, err = fsm.Call(ctx, ref, tt.event)
			if tt.replied == nil {
				require.Error(t, err, "the machine stopped")
			} else {
				require.NoError(t, err)
				require.Equal(t, tt.replied, v)
			}
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			reason, err := actor.Wait(wctx, ref)
			require.NoError(t, err, "the machine goes on")
			require.ErrorIs(t, reason, fsm.ErrBadResult)
			require.ErrorIs(t, reason, plugin.ErrMalformed)
			require.ErrorContains(t, reason, "plugin faulty-"+tt.mode)
			require.ErrorContains(t, reason, tt.text)
		})
	}
}

// A plugin that answers bytes that are not a machine result: the error
// names the plugin, the call and what was wrong.
func TestMalformedResultNamesThePlugin(t *testing.T) {
	p := loadFaulty(t, "garbage")
	_, err := fsm.Start(t.Context(), system(t), code(t, p, "v1"))
	require.ErrorIs(t, err, plugin.ErrMalformed)
	require.ErrorContains(t, err, "plugin: malformed result: counter v1 (plugin faulty-garbage): fsm.new: wire: malformed message: MachineResult")
}

// SIGKILL, again and again, with the events of many machines in flight on
// one connection: every event is counted once, by each machine.
func TestKilledWithManyMachinesBusy(t *testing.T) {
	ctx := t.Context()
	sys := system(t)
	p := load(t, plugin.WithConns(1), plugin.WithRestartBackoff(time.Millisecond, time.Millisecond),
		plugin.WithRedeliveries(5), plugin.WithMaxRestarts(10))
	const machines, rounds, perRound = 12, 4, 25
	refs := make([]actor.Ref, machines)
	for i := range refs {
		ref, err := fsm.Start(ctx, sys, code(t, p, "v1"))
		require.NoError(t, err)
		refs[i] = ref
	}
	killed := 0
	for range rounds {
		for i := range perRound {
			for _, ref := range refs {
				require.NoError(t, fsm.Cast(ref, tm.Incr{By: i + 1}))
			}
		}
		if pid := p.PID(); pid != 0 {
			require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
			killed++
		}
	}
	for _, ref := range refs {
		v, err := fsm.Call(ctx, ref, tm.Get{})
		require.NoError(t, err)
		c, err := plugin.As[tm.Count](v)
		require.NoError(t, err)
		require.Equal(t, rounds*perRound*(perRound+1)/2, c.N, "every event counted once")
	}
	require.Positive(t, killed)
}
