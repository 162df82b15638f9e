package upgrade_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/upgrade"
)

// The calc machine, for the strategies that watch what handlers return.
// v1 counts (Inc), answers Get with the count, and Double doubles it and
// answers the result. v2 is v1 but for Double: it answers twice the
// result, and asks to stop, to insert an event and to set a timeout (a
// shadow must let none of that out). v3 is v1 but answers Get with an
// error reply when the count is odd.
type (
	Double   struct{}
	CalcData struct{ N int }
)

var errOdd = errors.New("odd count")

func calc(ver string) *fsm.Machine[CalcData] {
	m := fsm.Define("calc", ver, "on", CalcData{})
	fsm.On(m, "on", func(_ Inc, d CalcData) fsm.Result[CalcData] { d.N++; return fsm.Keep(d) })
	fsm.On(m, "on", func(_ Get, d CalcData) fsm.Result[CalcData] {
		if ver == "v3" && d.N%2 == 1 {
			return fsm.Keep(d, fsm.ReplyError(fmt.Errorf("%w: %d", errOdd, d.N)))
		}
		return fsm.Keep(d, fsm.Reply(d.N))
	})
	fsm.On(m, "on", func(_ Double, d CalcData) fsm.Result[CalcData] {
		d.N *= 2
		if ver == "v2" {
			return fsm.Keep(d, fsm.Reply(d.N*2), fsm.NextEvent(Inc{}),
				fsm.StateTimeout(time.Millisecond, Inc{}), fsm.Stop(errors.New("a shadow must not stop")))
		}
		return fsm.Keep(d, fsm.Reply(d.N))
	})
	m.OnUpgrade(func(from, state string, raw msgpack.RawMessage) (string, CalcData, error) {
		var d CalcData
		err := msgpack.Unmarshal(raw, &d)
		return state, d, err
	})
	m.OnDowngrade(func(to, state string, d CalcData) (string, any, error) { return state, d, nil })
	return m
}

// newCalc returns a handler with calc v1, v2 and v3 registered.
func newCalc(t testing.TB, opts ...upgrade.ReleaseOption) *upgrade.ReleaseHandler {
	t.Helper()
	sys := actor.NewSystem(actor.WithLogger(quiet()))
	h, err := upgrade.NewReleaseHandler(sys, append([]upgrade.ReleaseOption{upgrade.WithReleaseLogger(quiet())}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, h.Close(context.Background()))
		require.NoError(t, sys.Shutdown(context.Background()))
	})
	for _, v := range []string{"v1", "v2", "v3"} {
		require.NoError(t, h.Register(calc(v)))
	}
	return h
}

// startCalc starts machines with the given IDs; those in beta get the tag
// cohort=beta, the others cohort=users.
func startCalc(t testing.TB, h *upgrade.ReleaseHandler, ids []string, beta ...string) map[string]actor.Ref {
	t.Helper()
	refs := map[string]actor.Ref{}
	for _, id := range ids {
		cohort := "users"
		for _, b := range beta {
			if b == id {
				cohort = "beta"
			}
		}
		ref, err := h.Start(context.Background(), "calc", fsm.WithID(id), fsm.WithTags(map[string]string{"cohort": cohort}))
		require.NoError(t, err)
		refs[id] = ref
	}
	return refs
}

func calcStatus(t testing.TB, h *upgrade.ReleaseHandler) upgrade.MachineStatus {
	t.Helper()
	for _, s := range h.Status() {
		if s.Machine == "calc" {
			return s
		}
	}
	t.Fatal("no calc in status")
	return upgrade.MachineStatus{}
}

func call(t testing.TB, ref actor.Ref, ev any) (any, error) {
	t.Helper()
	return fsm.Call(context.Background(), ref, ev)
}
