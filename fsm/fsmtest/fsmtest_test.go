package fsmtest_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/fsm/fsmtest"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

func TestRoundTrip(t *testing.T) {
	v1 := counterV1()
	samples := []fsm.Snapshot{
		fsmtest.Sample(t, v1, "idle", CounterV1{}),
		fsmtest.Sample(t, v1, "counting", CounterV1{N: 7}),
		fsmtest.Sample(t, v1, "counting", CounterV1{N: 1000}),
	}
	tests := []struct {
		name string
		to   fsm.Code
		errs []string
	}{
		{name: "round trips", to: counterV2(false, false)},
		{
			name: "a lossy downgrade",
			to:   counterV2(true, false),
			errs: []string{`sample 2: fsm: counter v1 -> v2, state "counting": downgrade of the upgrade: fsm: upgrade and downgrade do not round-trip: state "counting" data map[N:1000], then state "counting" data map[N:100]`},
		},
		{
			name: "a failing downgrade",
			to:   counterV2(false, true),
			errs: []string{`sample 0: fsm: counter v1 -> v2, state "idle": downgrade: cannot downgrade "idle"`},
		},
		{
			name: "a panicking upgrade",
			to:   panicky(),
			errs: []string{
				`sample 0: fsm: counter v1 -> v2, state "idle": upgrade: actor: panic: no way`,
				`sample 1: fsm: counter v1 -> v2, state "counting": upgrade: actor: panic: no way`,
				`sample 2: fsm: counter v1 -> v2, state "counting": upgrade: actor: panic: no way`,
			},
		},
		{
			name: "code of another machine",
			to:   fsm.Define("meter", "v2", "idle", 0),
			errs: []string{
				`sample 0: fsm: counter v1 -> v2, state "idle": check: fsm: code of another machine: snapshot of counter v1`,
				`sample 1: fsm: counter v1 -> v2, state "counting": check: fsm: code of another machine: snapshot of counter v1`,
				`sample 2: fsm: counter v1 -> v2, state "counting": check: fsm: code of another machine: snapshot of counter v1`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &reporter{TB: t}
			fsmtest.RoundTrip(r, v1, tt.to, samples...)
			require.Equal(t, tt.errs, r.errs)
		})
	}

	t.Run("no samples", func(t *testing.T) {
		r := &reporter{TB: t}
		fsmtest.RoundTrip(r, v1, counterV2(false, false))
		require.Equal(t, []string{"fsmtest: RoundTrip of counter v1 -> v2: no samples"}, r.errs)
	})
}

func panicky() *fsm.Machine[int] {
	m := fsm.Define("counter", "v2", "idle", 0)
	m.OnUpgrade(func(string, string, msgpack.RawMessage) (string, int, error) { panic("no way") })
	return m
}

func TestMachine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := fsmtest.Start(t, counterV1(), fsm.WithID("c1"))
		m.Cast(Inc{2}, Inc{3})
		v, err := m.Call(Get{})
		require.NoError(t, err)
		require.Equal(t, 5, v)
		require.Equal(t, "counting", m.State())
		require.Equal(t, "c1", m.Info().ID)

		require.NoError(t, m.ChangeCode(counterV2(false, false)))
		var d CounterV2
		m.Data(&d)
		require.Equal(t, CounterV2{Count: 5, Label: "migrated"}, d)

		time.Sleep(time.Minute)
		synctest.Wait()
		require.Equal(t, "idle", m.State(), "v2 got v1's state timeout")
	})
}
