package fsm_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/actor/actortest"
	"github.com/hotline-go/hotline/fsm"
	"github.com/stretchr/testify/require"
)

// Timeouts run on the actor's timers; these tests run them on synctest's
// fake clock, where time.Sleep only moves the clock.

// The alarm machine sets and cancels timeouts as its events say, and
// records the timeouts that fire.
type (
	Arm struct {
		Kind string // "state", "event" or a generic timeout's name
		D    time.Duration
		N    int
	}
	Disarm struct{ Kind string }
	Fired  struct{ N int }
	Poke   struct{}
	Move   struct{ To string }
)

func alarm() *fsm.Machine[[]string] {
	m := fsm.Define("alarm", "v1", "a", []string(nil))
	fsm.OnAny(m, func(a Arm, log []string) fsm.Result[[]string] {
		switch a.Kind {
		case "state":
			return fsm.Keep(log, fsm.StateTimeout(a.D, Fired{a.N}))
		case "event":
			return fsm.Keep(log, fsm.EventTimeout(a.D, Fired{a.N}))
		}
		return fsm.Keep(log, fsm.Timeout(a.Kind, a.D, Fired{a.N}))
	})
	fsm.OnAny(m, func(d Disarm, log []string) fsm.Result[[]string] {
		if d.Kind == "state" {
			return fsm.Keep(log, fsm.CancelStateTimeout())
		}
		return fsm.Keep(log, fsm.CancelTimeout(d.Kind))
	})
	fsm.OnAny(m, func(f Fired, log []string) fsm.Result[[]string] {
		return fsm.Keep(append(log, fmt.Sprintf("fired %d", f.N)))
	})
	fsm.OnAny(m, func(_ Poke, log []string) fsm.Result[[]string] { return fsm.Keep(log) })
	fsm.OnAny(m, func(mv Move, log []string) fsm.Result[[]string] { return fsm.Next(mv.To, log) })
	return m
}

func TestTimeouts(t *testing.T) {
	type step struct {
		send  []any         // events to cast
		sleep time.Duration // then let the clock run
		fired []string      // the timeouts that fired so far, in order
	}
	f := func(n int) string { return fmt.Sprintf("fired %d", n) }
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "state timeout fires after its delay",
			steps: []step{
				{send: []any{Arm{"state", 5 * time.Second, 1}}, sleep: 4999 * time.Millisecond},
				{sleep: time.Millisecond, fired: []string{f(1)}},
				{sleep: time.Hour, fired: []string{f(1)}},
			},
		},
		{
			name: "a change of state cancels the state timeout",
			steps: []step{
				{send: []any{Arm{"state", 5 * time.Second, 1}, Move{"b"}}, sleep: time.Minute},
			},
		},
		{
			name: "a move to the same state does not",
			steps: []step{
				{send: []any{Arm{"state", 5 * time.Second, 1}, Move{"a"}}, sleep: time.Minute, fired: []string{f(1)}},
			},
		},
		{
			name: "a state timeout is replaced, and cancelled",
			steps: []step{
				{send: []any{Arm{"state", 5 * time.Second, 1}, Arm{"state", 8 * time.Second, 2}}, sleep: 6 * time.Second},
				{sleep: 2 * time.Second, fired: []string{f(2)}},
				{send: []any{Arm{"state", 5 * time.Second, 3}, Disarm{"state"}}, sleep: time.Minute, fired: []string{f(2)}},
			},
		},
		{
			name: "any event cancels the event timeout",
			steps: []step{
				{send: []any{Arm{"event", 5 * time.Second, 1}}, sleep: 4 * time.Second},
				{send: []any{Poke{}}, sleep: time.Minute},
				{send: []any{Arm{"event", 5 * time.Second, 2}}, sleep: 5 * time.Second, fired: []string{f(2)}},
			},
		},
		{
			name: "an event to no handler cancels it too",
			steps: []step{
				{send: []any{Arm{"event", 5 * time.Second, 1}, "unknown"}, sleep: time.Minute},
			},
		},
		{
			name: "generic timeouts run side by side, through events and changes of state",
			steps: []step{
				{send: []any{Arm{"x", 5 * time.Second, 1}, Arm{"y", 3 * time.Second, 2}, Move{"b"}, Poke{}}, sleep: 4 * time.Second, fired: []string{f(2)}},
				{sleep: time.Second, fired: []string{f(2), f(1)}},
			},
		},
		{
			name: "a generic timeout is replaced by name, and cancelled",
			steps: []step{
				{send: []any{Arm{"x", 5 * time.Second, 1}, Arm{"x", 7 * time.Second, 2}}, sleep: 6 * time.Second},
				{sleep: time.Second, fired: []string{f(2)}},
				{send: []any{Arm{"x", 5 * time.Second, 3}, Disarm{"x"}, Disarm{"nothing"}}, sleep: time.Minute, fired: []string{f(2)}},
			},
		},
		{
			name: "a zero delay fires before the next event, in the order set",
			steps: []step{
				{send: []any{Arm{"x", 0, 1}, Arm{"y", -time.Second, 2}}, fired: []string{f(1), f(2)}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sys := actortest.NewSystem(t)
				ref := start(t, sys, alarm())
				for i, s := range tt.steps {
					cast(t, ref, s.send...)
					time.Sleep(s.sleep)
					synctest.Wait()
					require.Equal(t, s.fired, data[[]string](t, ref), "step %d", i)
				}
			})
		})
	}
}

// A timeout that fired while its machine was busy (here: suspended), and
// was cancelled before its message was handled, is ignored.
func TestStaleTimeoutIsIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		sys := actortest.NewSystem(t)
		ref := start(t, sys, alarm())
		cast(t, ref, Arm{"x", time.Second, 1})
		require.NoError(t, fsm.Sync(ctx, ref))
		require.NoError(t, actor.Suspend(ctx, ref))
		cast(t, ref, Disarm{"x"})
		time.Sleep(2 * time.Second) // fires: its message queues behind Disarm
		require.NoError(t, actor.Resume(ctx, ref))
		require.Empty(t, data[[]string](t, ref))
		require.Empty(t, info(t, ref).Timeouts)
	})
}

func TestPhoneTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := actortest.NewSystem(t)
		ref := start(t, sys, phoneV1())
		cast(t, ref, KeyPressed{1})
		time.Sleep(dialTimeout - time.Millisecond)
		cast(t, ref, KeyPressed{2}) // sets the dial timeout again
		time.Sleep(dialTimeout - time.Millisecond)
		require.Equal(t, "dialing", info(t, ref).State)
		time.Sleep(time.Millisecond)
		synctest.Wait()
		require.Equal(t, "off", info(t, ref).State)

		cast(t, ref, KeyPressed{1}, KeyPressed{2}, KeyPressed{3})
		time.Sleep(dialTimeout) // the dial timeout is gone with the state
		require.Equal(t, "connecting", info(t, ref).State)
		time.Sleep(connectTimeout - dialTimeout)
		synctest.Wait()
		require.Equal(t, "off", info(t, ref).State)
	})
}
