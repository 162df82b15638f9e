package upgrade_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/upgrade"
)

// The counter machine in three versions. v1 counts; v2 also keeps a label
// (its UPGRADE fails for a machine whose ID is "bad"); v3 keeps the count
// as a string and reads only v2's data, so v1 -> v3 is a chain.
type (
	Inc     struct{}
	Get     struct{}
	CountV1 struct{ N int }
	CountV2 struct {
		N     int
		Label string
	}
	CountV3 struct{ N string }
)

func counterV1() *fsm.Machine[CountV1] {
	m := fsm.Define("counter", "v1", "on", CountV1{})
	fsm.On(m, "on", func(_ Inc, d CountV1) fsm.Result[CountV1] { d.N++; return fsm.Keep(d) })
	fsm.On(m, "on", func(_ Get, d CountV1) fsm.Result[CountV1] { return fsm.Keep(d, fsm.Reply(d.N)) })
	m.UpgradesFromVersions()
	return m
}

var errBad = errors.New("this machine cannot be upgraded")

func counterV2(entered chan<- struct{}, block <-chan struct{}) *fsm.Machine[CountV2] {
	m := fsm.Define("counter", "v2", "on", CountV2{})
	fsm.On(m, "on", func(_ Inc, d CountV2) fsm.Result[CountV2] { d.N++; return fsm.Keep(d) })
	fsm.On(m, "on", func(_ Get, d CountV2) fsm.Result[CountV2] { return fsm.Keep(d, fsm.Reply(d.N)) })
	m.OnUpgrade(func(from, state string, raw msgpack.RawMessage) (string, CountV2, error) {
		if entered != nil {
			select {
			case entered <- struct{}{}:
			default:
			}
		}
		if block != nil {
			<-block
		}
		var v1 CountV1
		if err := msgpack.Unmarshal(raw, &v1); err != nil {
			return "", CountV2{}, err
		}
		if v1.N < 0 {
			return "", CountV2{}, errBad
		}
		return state, CountV2{N: v1.N, Label: "from " + from}, nil
	})
	m.OnDowngrade(func(to, state string, d CountV2) (string, any, error) {
		return state, CountV1{N: d.N}, nil
	})
	m.UpgradesFromVersions("v1")
	m.DowngradesToVersions("v1")
	return m
}

func counterV3() *fsm.Machine[CountV3] {
	m := fsm.Define("counter", "v3", "on", CountV3{N: "0"})
	fsm.On(m, "on", func(_ Get, d CountV3) fsm.Result[CountV3] { return fsm.Keep(d, fsm.Reply(d.N)) })
	m.OnUpgrade(func(from, state string, raw msgpack.RawMessage) (string, CountV3, error) {
		var v2 CountV2
		if err := msgpack.Unmarshal(raw, &v2); err != nil {
			return "", CountV3{}, err
		}
		return state, CountV3{N: fmt.Sprint(v2.N)}, nil
	})
	m.OnDowngrade(func(to, state string, d CountV3) (string, any, error) {
		var n int
		_, err := fmt.Sscan(d.N, &n)
		return state, CountV2{N: n}, err
	})
	m.UpgradesFromVersions("v2")
	m.DowngradesToVersions("v2")
	return m
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newRelease returns a system and a handler with counter v1, v2 and v3
// registered, both shut down at the end of the test.
func newRelease(t testing.TB, opts ...upgrade.ReleaseOption) (*actor.System, *upgrade.ReleaseHandler) {
	t.Helper()
	sys := actor.NewSystem(actor.WithLogger(quiet()))
	h, err := upgrade.NewReleaseHandler(sys, append([]upgrade.ReleaseOption{upgrade.WithReleaseLogger(quiet())}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, h.Close(context.Background()))
		require.NoError(t, sys.Shutdown(context.Background()))
	})
	require.NoError(t, h.Register(counterV1()))
	require.NoError(t, h.Register(counterV2(nil, nil)))
	require.NoError(t, h.Register(counterV3()))
	return sys, h
}

// startN starts n counters with IDs m0, m1, ... and n-th data set by incs.
func startN(t testing.TB, h *upgrade.ReleaseHandler, n int) []actor.Ref {
	t.Helper()
	refs := make([]actor.Ref, n)
	for i := range refs {
		var err error
		refs[i], err = h.Start(context.Background(), "counter", fsm.WithID(fmt.Sprintf("m%d", i)))
		require.NoError(t, err)
	}
	return refs
}

func infos(t testing.TB, refs []actor.Ref) []fsm.Info {
	t.Helper()
	out := make([]fsm.Info, len(refs))
	for i, r := range refs {
		require.NoError(t, fsm.Sync(context.Background(), r))
		inf, err := fsm.Inspect(context.Background(), r)
		require.NoError(t, err)
		out[i] = inf
	}
	return out
}

func status(t testing.TB, h *upgrade.ReleaseHandler) upgrade.MachineStatus {
	t.Helper()
	for _, s := range h.Status() {
		if s.Machine == "counter" {
			return s
		}
	}
	t.Fatal("no counter in status")
	return upgrade.MachineStatus{}
}

func counts(s upgrade.MachineStatus) map[string]int {
	out := map[string]int{}
	for _, v := range s.Versions {
		if v.Machines > 0 {
			out[v.Version] = v.Machines
		}
	}
	return out
}

func loaded(s upgrade.MachineStatus) []string {
	var out []string
	for _, v := range s.Versions {
		if v.Loaded {
			out = append(out, v.Version)
		}
	}
	return out
}
