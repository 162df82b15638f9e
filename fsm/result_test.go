package fsm

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/actor/actortest"
)

func TestResult(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name  string
		r     Result[int]
		next  bool
		state string
		acts  []Action
	}{
		{"keep", Keep(1), false, "", nil},
		{"keep with actions", Keep(1, Reply(2), Postpone()), false, "", []Action{Reply(2), Postpone()}},
		{"next", Next("b", 1), true, "b", nil},
		{"next with actions", Next("b", 1, NextEvent(3)), true, "b", []Action{NextEvent(3)}},
		{"stop with", StopWith(boom, 1), false, "", []Action{Stop(boom)}},
		{"stop with a reply", StopWith(boom, 1, Reply(2)), false, "", []Action{Reply(2), Stop(boom)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, ok := tt.r.next()
			require.True(t, ok)
			require.Equal(t, tt.next, next)
			if next {
				require.Equal(t, tt.state, tt.r.state)
			}
			require.Equal(t, 1, tt.r.data)
			require.Equal(t, tt.acts, tt.r.actions())
		})
	}
	var zero Result[int]
	_, ok := zero.next()
	require.False(t, ok, "the zero Result")
	require.Nil(t, zero.actions())
}

func TestResultOwnsItsActions(t *testing.T) {
	acts := []Action{Reply(1), Reply(2)}
	r := Keep(0, acts...)
	acts[0] = Stop(nil)
	require.Equal(t, []Action{Reply(1), Reply(2)}, r.actions())
}

func TestResultAllocations(t *testing.T) {
	var r Result[int]
	require.Zero(t, testing.AllocsPerRun(100, func() { r = Keep(r.data + 1) }), "Keep")
	require.Zero(t, testing.AllocsPerRun(100, func() { r = Next("b", r.data+1) }), "Next")
	require.Equal(t, 1.0, testing.AllocsPerRun(100, func() { r = Keep(r.data+1, Reply(1), Postpone()) }), "Keep with actions")
}

// The actor's path for casts (machine.Receive) skips parts of dispatch;
// it must do what dispatch does. A random run of casts on the test
// machine ends with the same data, state and postponed events either way.
func TestCastPathMatchesDispatch(t *testing.T) {
	events := []func(r *rand.Rand) any{
		func(r *rand.Rand) any { return Ev{r.IntN(10)} },
		func(r *rand.Rand) any { return Later{r.IntN(10)} },
		func(r *rand.Rand) any { return Go{[]string{"a", "b", "c"}[r.IntN(3)]} },
		func(r *rand.Rand) any { return Tick{r.IntN(10)} },
		func(r *rand.Rand) any { return Ping{} },
		func(r *rand.Rand) any { return r.IntN(10) }, // unknown: dropped
	}
	for seed := range uint64(50) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 7))
			m := newTestMachine()
			On(m, "c", func(e Ev, d trail) Result[trail] {
				return Next("a", d.with(fmt.Sprintf("c ev%d", e.N)), NextEvent(Tick{e.N}))
			})
			c, sh := newCore(t, m)
			sys := actortest.NewSystem(t)
			ref, err := Start(context.Background(), sys, m, WithID("id1"))
			require.NoError(t, err)
			for range 200 {
				ev := events[r.IntN(len(events))](r)
				c.dispatch(sh, Event{Payload: ev}, caller{})
				require.NoError(t, actor.Send(ref, ev))
			}
			require.NoError(t, Sync(context.Background(), ref))
			inf, err := Inspect(context.Background(), ref)
			require.NoError(t, err)
			var d trail
			require.NoError(t, msgpack.Unmarshal(inf.Data, &d))
			require.Equal(t, seen(t, c), d.Seen)
			require.Equal(t, c.state, inf.State)
			require.Equal(t, len(c.postponed), inf.Postponed)
			require.Equal(t, c.dropped, inf.Dropped)
		})
	}
}
