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
	"github.com/hotline-go/hotline/fsm/fsmtest"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// The tests of this file check the runtime against Erlang/OTP's gen_statem,
// one behaviour per test; doc/fsm.md ("Checked against OTP") maps each rule
// of the OTP manual to its test. They drive a scripted machine: each Do
// says what its handler does, and the machine's data is the trail of what
// it handled, in which state.

type (
	// Do is an event whose handler does what its fields say.
	Do struct {
		Tag        string
		To         string // Next to this state; "" keeps the state
		Same       bool   // Next to the current state (OTP's next_state to the same state)
		PostponeIn string // postpone the event when in this state
		PostponeTo string // and then go to this state ("" keeps it)
		Insert     []Do   // NextEvent each, in order
		Set        []Set  // timeouts to set or cancel, in order
		Reply      bool   // reply with Tag
		ReplyEarly bool   // reply with Tag, and postpone too, when in PostponeIn
		Stop       bool   // stop (normally) after the other actions
	}
	// Set sets (or, with Cancel, cancels) a timeout: Kind is "state",
	// "event" or a generic timeout's name.
	Set struct {
		To     string // the state Rang's handler goes to
		Kind   string
		D      time.Duration
		Tag    string
		Cancel bool
	}
	// Rang is the payload of every timeout the script sets; its handler
	// goes to state To ("" keeps the state).
	Rang struct{ Tag, To string }
)

func (a Set) action() fsm.Action {
	switch {
	case a.Kind == "state" && a.Cancel:
		return fsm.CancelStateTimeout()
	case a.Kind == "state":
		return fsm.StateTimeout(a.D, Rang{a.Tag, a.To})
	case a.Kind == "event":
		return fsm.EventTimeout(a.D, Rang{a.Tag, a.To})
	case a.Cancel:
		return fsm.CancelTimeout(a.Kind)
	}
	return fsm.Timeout(a.Kind, a.D, Rang{a.Tag, a.To})
}

var scriptStates = []string{"a", "b", "c"}

// script returns the scripted machine, in state a. enter, if not nil, is
// the enter handler of every state: it gets the state entered and the one
// left, and returns the actions to run (and, with to, a state to go to,
// which is not allowed).
func script(enter func(state, prev string) (to string, acts []fsm.Action)) *fsm.Machine[[]string] {
	return scriptVersion("v1", enter)
}

// scriptVersion is script in version version.
func scriptVersion(version string, enter func(state, prev string) (to string, acts []fsm.Action)) *fsm.Machine[[]string] {
	m := fsm.Define("script", version, "a", []string(nil))
	for _, s := range scriptStates {
		fsm.On(m, s, func(st Do, log []string) fsm.Result[[]string] {
			log = append(log, s+":"+st.Tag)
			if st.PostponeIn == s {
				acts := []fsm.Action{fsm.Postpone()}
				if st.ReplyEarly {
					acts = append(acts, fsm.Reply("early "+st.Tag))
				}
				if st.PostponeTo != "" {
					return fsm.Next(st.PostponeTo, log, acts...)
				}
				return fsm.Keep(log, acts...)
			}
			var acts []fsm.Action
			for _, in := range st.Insert {
				acts = append(acts, fsm.NextEvent(in))
			}
			for _, a := range st.Set {
				acts = append(acts, a.action())
			}
			if st.Reply {
				acts = append(acts, fsm.Reply(st.Tag))
			}
			if st.Stop {
				acts = append(acts, fsm.Stop(nil))
			}
			switch {
			case st.To != "":
				return fsm.Next(st.To, log, acts...)
			case st.Same:
				return fsm.Next(s, log, acts...)
			}
			return fsm.Keep(log, acts...)
		})
		if enter != nil {
			m.Enter(s, func(prev string, log []string) fsm.Result[[]string] {
				log = append(log, fmt.Sprintf("%s:enter from %s", s, prev))
				to, acts := enter(s, prev)
				if to != "" {
					return fsm.Next(to, log, acts...)
				}
				return fsm.Keep(log, acts...)
			})
		}
	}
	fsm.OnAny(m, func(f Rang, log []string) fsm.Result[[]string] {
		log = append(log, "fire "+f.Tag)
		if f.To != "" {
			return fsm.Next(f.To, log)
		}
		return fsm.Keep(log)
	})
	return m
}

// trailOf returns the scripted machine's trail, once it has handled what
// was sent to it.
func trailOf(m *fsmtest.Machine) []string {
	var log []string
	m.Data(&log)
	return log
}

// queue casts evs while the machine is suspended, so that all of them wait
// in its mailbox before it handles the first.
func queue(t *testing.T, m *fsmtest.Machine, evs ...any) {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, actor.Suspend(ctx, m.Ref))
	m.Cast(evs...)
	require.NoError(t, actor.Resume(ctx, m.Ref))
}

// OTP: "postpone: retries it when the state changes (NextState =/= State)";
// keep_state and next_state to the same state are not changes.
func TestOTPPostponedRetriedOnlyOnStateChange(t *testing.T) {
	m := fsmtest.Start(t, script(nil))
	m.Cast(Do{Tag: "p", PostponeIn: "a"}, Do{Tag: "keep"}, Do{Tag: "same", Same: true})
	require.Equal(t, []string{"a:p", "a:keep", "a:same"}, trailOf(m))
	require.Equal(t, 1, m.Info().Postponed)
	m.Cast(Do{Tag: "go", To: "b"})
	require.Equal(t, []string{"a:p", "a:keep", "a:same", "a:go", "b:p"}, trailOf(m))
	require.Zero(t, m.Info().Postponed)
}

// OTP: "If the state changes, the queue of incoming events is reset to
// start with the oldest postponed": retried in the order postponed, ahead
// of the events that were already waiting.
func TestOTPPostponedRetriedInOrderAheadOfQueued(t *testing.T) {
	m := fsmtest.Start(t, script(nil))
	queue(t, m,
		Do{Tag: "p1", PostponeIn: "a"}, Do{Tag: "p2", PostponeIn: "a"}, Do{Tag: "p3", PostponeIn: "a"},
		Do{Tag: "go", To: "b"}, Do{Tag: "newer"})
	require.Equal(t, []string{"a:p1", "a:p2", "a:p3", "a:go", "b:p1", "b:p2", "b:p3", "b:newer"}, trailOf(m))
}

// OTP: an event postponed again (no state change while it is retried)
// stays postponed, behind none of the others: the order is kept over
// several changes of state.
func TestOTPPostponedAgainKeepsOrder(t *testing.T) {
	m := fsmtest.Start(t, script(nil))
	queue(t, m,
		Do{Tag: "p1", PostponeIn: "b"}, Do{Tag: "go b", To: "b"},
		Do{Tag: "p2", PostponeIn: "b"}, Do{Tag: "p3", PostponeIn: "b"},
		Do{Tag: "go c", To: "c"})
	require.Equal(t, []string{
		"a:p1", "a:go b", "b:p2", "b:p3", "b:go c",
		"c:p2", "c:p3",
	}, trailOf(m))
	// p1 was handled in a and not postponed; p2 and p3 were retried in c.
}

// OTP: "The stored events are inserted in the queue as the next to process
// before any already queued events. The order of these stored events is
// preserved"; an inserted event's own inserted events come before the
// rest.
func TestOTPNextEventOrder(t *testing.T) {
	m := fsmtest.Start(t, script(nil))
	queue(t, m,
		Do{Tag: "x", Insert: []Do{{Tag: "i1", Insert: []Do{{Tag: "i1.1"}, {Tag: "i1.2"}}}, {Tag: "i2"}}},
		Do{Tag: "queued"})
	require.Equal(t, []string{"a:x", "a:i1", "a:i1.1", "a:i1.2", "a:i2", "a:queued"}, trailOf(m))
}

// OTP: next_event events are "inserted to be processed before the other
// queued events", which after a state change start with the postponed
// ones: inserted first, then retried, then the mailbox.
func TestOTPNextEventBeforeRetriedPostponed(t *testing.T) {
	m := fsmtest.Start(t, script(nil))
	queue(t, m,
		Do{Tag: "p", PostponeIn: "a"},
		Do{Tag: "go", To: "b", Insert: []Do{{Tag: "i1"}, {Tag: "i2"}}},
		Do{Tag: "queued"})
	require.Equal(t, []string{"a:p", "a:go", "b:i1", "b:i2", "b:p", "b:queued"}, trailOf(m))
}

// OTP: a postponing handler that also changes the state has its own event
// retried at once, after the older postponed ones and before the mailbox.
func TestOTPPostponeWithStateChange(t *testing.T) {
	m := fsmtest.Start(t, script(nil))
	queue(t, m,
		Do{Tag: "p1", PostponeIn: "a"}, Do{Tag: "p2", PostponeIn: "a", PostponeTo: "b"},
		Do{Tag: "queued"})
	require.Equal(t, []string{"a:p1", "a:p2", "b:p1", "b:p2", "b:queued"}, trailOf(m))
	require.Zero(t, m.Info().Postponed)
}

// timed runs f in a synctest bubble with a scripted machine.
func timed(t *testing.T, enter func(state, prev string) (string, []fsm.Action), f func(t *testing.T, m *fsmtest.Machine)) {
	synctest.Test(t, func(t *testing.T) {
		f(t, fsmtest.Start(t, script(enter)))
	})
}

// wait lets the fake clock run d, then returns the trail.
func wait(m *fsmtest.Machine, d time.Duration) []string {
	time.Sleep(d)
	synctest.Wait()
	return trailOf(m)
}

// OTP: "Any event that arrives cancels this time-out. Note that a retried
// or inserted event counts as arrived." So do a call, an event no handler
// takes, another timeout's event, and an event that is postponed; Sync is
// not an event.
func TestOTPEventTimeoutCancelledByAnyEvent(t *testing.T) {
	arm := Do{Tag: "arm", Set: []Set{{Kind: "event", D: 5 * time.Second, Tag: "ev"}}}
	tests := []struct {
		name string
		then func(t *testing.T, m *fsmtest.Machine)
	}{
		{"a cast", func(t *testing.T, m *fsmtest.Machine) { m.Cast(Do{Tag: "poke"}) }},
		{"a call", func(t *testing.T, m *fsmtest.Machine) {
			_, err := m.Call(Do{Tag: "call", Reply: true})
			require.NoError(t, err)
		}},
		{"an event no handler takes", func(t *testing.T, m *fsmtest.Machine) { m.Cast("unknown") }},
		{"an event that is postponed", func(t *testing.T, m *fsmtest.Machine) { m.Cast(Do{Tag: "p", PostponeIn: "a"}) }},
		{"another timeout's event", func(t *testing.T, m *fsmtest.Machine) {
			m.Cast(Do{Tag: "gen", Set: []Set{{Kind: "g", D: time.Second, Tag: "g"}}, Insert: []Do{arm}})
		}},
		{"an inserted event", func(t *testing.T, m *fsmtest.Machine) {
			m.Cast(Do{Tag: "ins", Insert: []Do{arm, {Tag: "inserted"}}})
		}},
		{"a retried event", func(t *testing.T, m *fsmtest.Machine) {
			m.Cast(Do{Tag: "p", PostponeIn: "a"}, Do{Tag: "go", To: "b", Set: []Set{{Kind: "event", D: 5 * time.Second, Tag: "ev"}}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			timed(t, nil, func(t *testing.T, m *fsmtest.Machine) {
				m.Cast(arm)
				wait(m, 4*time.Second)
				tt.then(t, m)
				require.NotContains(t, wait(m, time.Minute), "fire ev")
			})
		})
	}
	t.Run("but not Sync", func(t *testing.T) {
		timed(t, nil, func(t *testing.T, m *fsmtest.Machine) {
			m.Cast(arm)
			time.Sleep(4 * time.Second)
			require.NoError(t, fsm.Sync(t.Context(), m.Ref))
			require.Equal(t, []string{"a:arm", "fire ev"}, wait(m, time.Second))
		})
	})
}

// OTP: "Any event cancels an event_timeout() so a zero time event time-out
// is only generated if the event queue is empty", the queue of inserted
// and retried events; "Time-outs with zero time are guaranteed to be
// delivered to the state machine before any external not yet received
// event". (Before the fix, a timeout of 0 went through the mailbox, behind
// the events waiting there, and an event timeout of 0 never fired when one
// waited.)
func TestOTPZeroEventTimeout(t *testing.T) {
	zero := []Set{{Kind: "event", Tag: "zero"}}
	t.Run("fires when nothing is queued", func(t *testing.T) {
		timed(t, nil, func(t *testing.T, m *fsmtest.Machine) {
			m.Cast(Do{Tag: "arm", Set: zero})
			require.Equal(t, []string{"a:arm", "fire zero"}, wait(m, 0))
		})
	})
	t.Run("not with an inserted event", func(t *testing.T) {
		timed(t, nil, func(t *testing.T, m *fsmtest.Machine) {
			m.Cast(Do{Tag: "arm", Set: zero, Insert: []Do{{Tag: "i"}}})
			require.Equal(t, []string{"a:arm", "a:i"}, wait(m, time.Minute))
		})
	})
	t.Run("not with a retried event", func(t *testing.T) {
		timed(t, nil, func(t *testing.T, m *fsmtest.Machine) {
			m.Cast(Do{Tag: "p", PostponeIn: "a"}, Do{Tag: "go", To: "b", Set: zero})
			require.Equal(t, []string{"a:p", "a:go", "b:p"}, wait(m, time.Minute))
		})
	})
	t.Run("before an event in the mailbox", func(t *testing.T) {
		timed(t, nil, func(t *testing.T, m *fsmtest.Machine) {
			queue(t, m, Do{Tag: "arm", Set: zero}, Do{Tag: "next"})
			require.Equal(t, []string{"a:arm", "fire zero", "a:next"}, wait(m, time.Minute))
		})
	})
	t.Run("not after a state timeout of 0 set before it", func(t *testing.T) {
		timed(t, nil, func(t *testing.T, m *fsmtest.Machine) {
			m.Cast(Do{Tag: "arm", Set: []Set{{Kind: "state", Tag: "state"}, {Kind: "event", Tag: "event"}}})
			require.Equal(t, []string{"a:arm", "fire state"}, wait(m, time.Minute))
		})
	})
	t.Run("but before one set after it", func(t *testing.T) {
		timed(t, nil, func(t *testing.T, m *fsmtest.Machine) {
			m.Cast(Do{Tag: "arm", Set: []Set{{Kind: "event", Tag: "event"}, {Kind: "state", Tag: "state"}}})
			require.Equal(t, []string{"a:arm", "fire event", "fire state"}, wait(m, time.Minute))
		})
	})
}

// OTP: timeouts of 0 are handled after the events inserted or retried by
// the step that set them, before the mailbox, in the order set; one
// cancelled before its turn (a state timeout, by a change of state) is
// not. An enter handler, which may not insert events, uses a state timeout
// of 0 to act in its state before any other event: also the initial
// state's, before Start returns.
func TestOTPZeroTimeouts(t *testing.T) {
	t.Run("after inserted and retried events, before the mailbox, in order", func(t *testing.T) {
		timed(t, nil, func(t *testing.T, m *fsmtest.Machine) {
			queue(t, m,
				Do{Tag: "p", PostponeIn: "a"},
				Do{Tag: "go", To: "b", Insert: []Do{{Tag: "i"}}, Set: []Set{{Kind: "g1", Tag: "g1"}, {Kind: "g2", Tag: "g2"}}},
				Do{Tag: "queued"})
			require.Equal(t, []string{"a:p", "a:go", "b:i", "b:p", "fire g1", "fire g2", "b:queued"}, wait(m, 0))
		})
	})
	t.Run("a state timeout of 0 is cancelled by a change of state before its turn", func(t *testing.T) {
		timed(t, nil, func(t *testing.T, m *fsmtest.Machine) {
			m.Cast(Do{Tag: "arm", Set: []Set{{Kind: "state", Tag: "state"}}, Insert: []Do{{Tag: "go", To: "b"}}})
			require.Equal(t, []string{"a:arm", "a:go"}, wait(m, time.Minute))
		})
	})
	t.Run("set by an enter handler", func(t *testing.T) {
		enter := func(state, _ string) (string, []fsm.Action) {
			return "", []fsm.Action{fsm.StateTimeout(0, Rang{Tag: "entered " + state})}
		}
		timed(t, enter, func(t *testing.T, m *fsmtest.Machine) {
			inf, err := fsm.Inspect(t.Context(), m.Ref) // overtakes what waits in the mailbox
			require.NoError(t, err)
			var log []string
			require.NoError(t, msgpack.Unmarshal(inf.Data, &log))
			require.Equal(t, []string{"a:enter from a", "fire entered a"}, log, "the initial state's was handled in Start")
			queue(t, m, Do{Tag: "go", To: "b"}, Do{Tag: "queued"})
			require.Equal(t, []string{
				"a:enter from a", "fire entered a",
				"a:go", "b:enter from a", "fire entered b", "b:queued",
			}, wait(m, 0))
		})
	})
}

// OTP: "A state change cancels a state_timeout() and any new transition
// option of this type belongs to the new state"; "Setting this timer while
// it is running will restart it with the new time-out value"; keep_state
// and next_state to the same state keep it running.
func TestOTPStateTimeout(t *testing.T) {
	arm := func(tag string, d time.Duration) []Set { return []Set{{Kind: "state", D: d, Tag: tag}} }
	t.Run("cancelled by a change of state", func(t *testing.T) {
		timed(t, nil, func(t *testing.T, m *fsmtest.Machine) {
			m.Cast(Do{Tag: "arm", Set: arm("s", 5*time.Second)}, Do{Tag: "go", To: "b"})
			require.Equal(t, []string{"a:arm", "a:go"}, wait(m, time.Minute))
		})
	})
	t.Run("cancelled by a change of state and back", func(t *testing.T) {
		timed(t, nil, func(t *testing.T, m *fsmtest.Machine) {
			m.Cast(Do{Tag: "arm", Set: arm("s", 5*time.Second)}, Do{Tag: "go", To: "b", Insert: []Do{{Tag: "back", To: "a"}}})
			require.Equal(t, []string{"a:arm", "a:go", "b:back"}, wait(m, time.Minute))
		})
	})
	t.Run("set with a change of state, belongs to the new state", func(t *testing.T) {
		timed(t, nil, func(t *testing.T, m *fsmtest.Machine) {
			m.Cast(Do{Tag: "go", To: "b", Set: arm("s", 5*time.Second)})
			require.Equal(t, []string{"a:go", "fire s"}, wait(m, 5*time.Second))
		})
	})
	t.Run("survives keep and a next to the same state", func(t *testing.T) {
		timed(t, nil, func(t *testing.T, m *fsmtest.Machine) {
			m.Cast(Do{Tag: "arm", Set: arm("s", 5*time.Second)})
			wait(m, 2*time.Second)
			m.Cast(Do{Tag: "keep"}, Do{Tag: "same", Same: true})
			require.Equal(t, []string{"a:arm", "a:keep", "a:same"}, wait(m, 2999*time.Millisecond))
			require.Equal(t, []string{"a:arm", "a:keep", "a:same", "fire s"}, wait(m, time.Millisecond))
		})
	})
	t.Run("set again, restarted and not added", func(t *testing.T) {
		timed(t, nil, func(t *testing.T, m *fsmtest.Machine) {
			m.Cast(Do{Tag: "arm1", Set: arm("s1", 5*time.Second)})
			wait(m, 3*time.Second)
			m.Cast(Do{Tag: "arm2", Set: arm("s2", 5*time.Second)})
			require.Equal(t, []string{"a:arm1", "a:arm2"}, wait(m, 4999*time.Millisecond))
			require.Equal(t, []string{"a:arm1", "a:arm2", "fire s2"}, wait(m, time.Hour))
		})
	})
	t.Run("cancelled", func(t *testing.T) {
		timed(t, nil, func(t *testing.T, m *fsmtest.Machine) {
			m.Cast(Do{Tag: "arm", Set: arm("s", 5*time.Second)}, Do{Tag: "cancel", Set: []Set{{Kind: "state", Cancel: true}}})
			require.Equal(t, []string{"a:arm", "a:cancel"}, wait(m, time.Minute))
		})
	})
	t.Run("set by the enter handler", func(t *testing.T) {
		enter := func(state, _ string) (string, []fsm.Action) {
			if state == "b" {
				return "", []fsm.Action{fsm.StateTimeout(5*time.Second, Rang{Tag: "enter b"})}
			}
			return "", nil
		}
		timed(t, enter, func(t *testing.T, m *fsmtest.Machine) {
			m.Cast(Do{Tag: "go", To: "b", Set: arm("handler", time.Second)})
			require.Equal(t, []string{"a:enter from a", "a:go", "b:enter from a"}, wait(m, 4*time.Second),
				"the enter handler's actions run after the handler's: its state timeout replaces the handler's")
			require.Equal(t, []string{"a:enter from a", "a:go", "b:enter from a", "fire enter b"}, wait(m, time.Second))
		})
	})
}

// OTP: generic timeouts are independent of each other, of events and of
// changes of state; set again by name they restart; cancelled by name.
func TestOTPGenericTimeouts(t *testing.T) {
	timed(t, nil, func(t *testing.T, m *fsmtest.Machine) {
		m.Cast(Do{Tag: "arm", Set: []Set{
			{Kind: "x", D: 5 * time.Second, Tag: "x"},
			{Kind: "y", D: 3 * time.Second, Tag: "y"},
			{Kind: "z", D: 4 * time.Second, Tag: "z"},
		}})
		wait(m, 2*time.Second)
		m.Cast(Do{Tag: "go", To: "b"}, Do{Tag: "re-arm y", Set: []Set{{Kind: "y", D: 2 * time.Second, Tag: "y2"}, {Kind: "z", Cancel: true}}})
		require.Equal(t, []string{"a:arm", "a:go", "b:re-arm y", "fire y2"}, wait(m, 2*time.Second))
		require.Equal(t, []string{"a:arm", "a:go", "b:re-arm y", "fire y2", "fire x"}, wait(m, time.Hour))
	})
}

// OTP: "Actions that set transition options override any previous of the
// same type, so the last in the containing list wins."
func TestOTPLastTimeoutInListWins(t *testing.T) {
	for _, kind := range []string{"state", "event", "g"} {
		t.Run(kind, func(t *testing.T) {
			timed(t, nil, func(t *testing.T, m *fsmtest.Machine) {
				m.Cast(Do{Tag: "arm", Set: []Set{{Kind: kind, D: time.Second, Tag: "first"}, {Kind: kind, D: 2 * time.Second, Tag: "last"}}})
				require.Equal(t, []string{"a:arm"}, wait(m, 1999*time.Millisecond))
				require.Equal(t, []string{"a:arm", "fire last"}, wait(m, time.Hour))
			})
		})
	}
}

// OTP: several timeouts due at the same instant are handled in the order
// they were set, whatever their kinds, before the events that come after
// them; one that a handler before it cancels (here: a state timeout
// cancelled by the change of state that an earlier one makes) does not
// fire. (Before the fix, the order was the runtime's: each timer's
// goroutine raced the others' to the mailbox.)
func TestOTPTimeoutsDueTogether(t *testing.T) {
	tests := []struct {
		name string
		set  []Set
		want []string
	}{
		{
			name: "in the order set",
			set: []Set{
				{Kind: "g1", D: time.Second, Tag: "g1"},
				{Kind: "state", D: time.Second, Tag: "state"},
				{Kind: "g2", D: time.Second, Tag: "g2"},
				{Kind: "g3", D: time.Second, Tag: "g3"},
				{Kind: "event", D: time.Second, Tag: "event"}, // cancelled by g1's event
			},
			want: []string{"a:arm", "fire g1", "fire state", "fire g2", "fire g3"},
		},
		{
			name: "restarted: in the order last set",
			set: []Set{
				{Kind: "g1", D: time.Second, Tag: "g1"},
				{Kind: "g2", D: time.Second, Tag: "g2"},
				{Kind: "g1", D: time.Second, Tag: "g1 again"},
			},
			want: []string{"a:arm", "fire g2", "fire g1 again"},
		},
		{
			name: "one cancelled by the handler of another",
			set: []Set{
				{Kind: "g1", D: time.Second, Tag: "g1", To: "b"},
				{Kind: "state", D: time.Second, Tag: "state"},
				{Kind: "g2", D: time.Second, Tag: "g2"},
			},
			want: []string{"a:arm", "fire g1", "fire g2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 20 { // each timer's goroutine may reach the mailbox first
				timed(t, nil, func(t *testing.T, m *fsmtest.Machine) {
					m.Cast(Do{Tag: "arm", Set: tt.set})
					require.Equal(t, tt.want, wait(m, time.Second))
				})
			}
		})
	}
}

// OTP: state enter calls run at the start, at every change of state, and
// not for keep_state or next_state to the same state (this runtime has no
// repeat_state: doc/fsm.md); prev is the state left.
func TestOTPEnterCalls(t *testing.T) {
	m := fsmtest.Start(t, script(func(string, string) (string, []fsm.Action) { return "", nil }))
	m.Cast(Do{Tag: "keep"}, Do{Tag: "same", Same: true}, Do{Tag: "go", To: "b"}, Do{Tag: "go", To: "c"}, Do{Tag: "go", To: "a"})
	require.Equal(t, []string{
		"a:enter from a", "a:keep", "a:same",
		"a:go", "b:enter from a", "b:go", "c:enter from b", "c:go", "a:enter from c",
	}, trailOf(m))
}

// OTP: a state enter call "can not" change the state, and postpone and
// next_event are not enter actions: the machine stops with an error that
// names the enter handler, the state and the action.
func TestOTPEnterMayNotChangeStateOrInsert(t *testing.T) {
	tests := []struct {
		name string
		to   string
		act  fsm.Action
		want []string // in the error
	}{
		{"change the state", "c", fsm.Action{}, []string{"enter handler", `state "b"`, `"c"`}},
		{"postpone", "", fsm.Postpone(), []string{"enter handler", `state "b"`, "postpone"}},
		{"insert an event", "", fsm.NextEvent(Do{Tag: "x"}), []string{"enter handler", `state "b"`, "next_event"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enter := func(state, _ string) (string, []fsm.Action) {
				if state != "b" {
					return "", nil
				}
				return tt.to, []fsm.Action{tt.act}
			}
			m := fsmtest.Start(t, script(enter))
			_, err := m.Call(Do{Tag: "go", To: "b"})
			require.ErrorIs(t, err, fsm.ErrBadResult)
			reason := actortest.Wait(t, m.Ref)
			require.ErrorIs(t, reason, fsm.ErrBadResult)
			for _, w := range tt.want {
				require.Contains(t, reason.Error(), w)
			}
		})
	}
}

// OTP: replies go out as the actions run, in order; the calls postponed
// are answered, in the order they came, by the handlers that take them
// after the change of state, before the call that changed it returns.
func TestOTPRepliesInOrder(t *testing.T) {
	timed(t, nil, func(t *testing.T, m *fsmtest.Machine) {
		tags := []string{"c1", "c2", "c3"}
		answers := make([]string, len(tags))
		for i, tag := range tags {
			go func() {
				v, err := m.Call(Do{Tag: tag, PostponeIn: "a", Reply: true})
				answers[i] = fmt.Sprintf("%v %v", v, err)
			}()
			synctest.Wait() // handled and postponed: the calls are postponed in this order
		}
		require.Equal(t, []string{"", "", ""}, answers, "no answer before the change of state")
		v, err := m.Call(Do{Tag: "go", To: "b", Reply: true})
		require.NoError(t, err)
		require.Equal(t, "go", v)
		synctest.Wait()
		require.Equal(t, []string{"c1 <nil>", "c2 <nil>", "c3 <nil>"}, answers)
		require.Equal(t, []string{"a:c1", "a:c2", "a:c3", "a:go", "b:c1", "b:c2", "b:c3"}, trailOf(m))
	})
}

// OTP: stop_and_reply "Sends all Replies, then terminates"; the machine's
// exit reason is the stop's, and what waits in the mailbox is not handled.
func TestOTPStopAndReply(t *testing.T) {
	timed(t, nil, func(t *testing.T, m *fsmtest.Machine) {
		require.NoError(t, actor.Suspend(t.Context(), m.Ref))
		answer := make(chan string, 1)
		go func() {
			v, err := m.Call(Do{Tag: "bye", Reply: true, Stop: true})
			answer <- fmt.Sprintf("%v %v", v, err)
		}()
		synctest.Wait() // the call waits in the mailbox
		after := make(chan error, 1)
		go func() {
			_, err := m.Call(Do{Tag: "after", Reply: true})
			after <- err
		}()
		synctest.Wait() // and a call behind it
		require.NoError(t, actor.Resume(t.Context(), m.Ref))
		require.Equal(t, "bye <nil>", <-answer, "the reply before Stop reaches the caller")
		require.ErrorIs(t, actortest.Wait(t, m.Ref), actor.Normal)
		var exit *actor.ExitError
		require.ErrorAs(t, <-after, &exit, "the call behind the stop is not handled: its caller learns the exit")
		require.ErrorIs(t, exit, actor.Normal)
	})
}

// OTP: a caller that gave up gets no late reply anywhere it can see it:
// not in a later call of its own.
func TestOTPGivenUpCallGetsNoLateReply(t *testing.T) {
	timed(t, nil, func(t *testing.T, m *fsmtest.Machine) {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			_, err := fsm.Call(ctx, m.Ref, Do{Tag: "early", PostponeIn: "a", Reply: true})
			done <- err
		}()
		synctest.Wait() // postponed
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
		// The postponed call is answered now, to nobody; the next calls
		// get their own replies.
		for _, tag := range []string{"go", "late1", "late2"} {
			st := Do{Tag: tag, Reply: true}
			if tag == "go" {
				st.To = "b"
			}
			v, err := m.Call(st)
			require.NoError(t, err)
			require.Equal(t, tag, v)
		}
		require.Equal(t, []string{"a:early", "a:go", "b:early", "b:late1", "b:late2"}, trailOf(m))
	})
}

// OTP: a call answered and postponed in one go is answered once: the
// reply of the handler that takes it again goes nowhere, and never to a
// later call (which may reuse the first one's reply slot).
func TestOTPReplyThenPostponeAnswersOnce(t *testing.T) {
	m := fsmtest.Start(t, script(nil))
	v, err := m.Call(Do{Tag: "c1", PostponeIn: "a", ReplyEarly: true, Reply: true})
	require.NoError(t, err)
	require.Equal(t, "early c1", v)
	for _, tag := range []string{"go", "next"} {
		st := Do{Tag: tag, Reply: true}
		if tag == "go" {
			st.To = "b"
		}
		v, err := m.Call(st)
		require.NoError(t, err)
		require.Equal(t, tag, v)
	}
	require.Equal(t, []string{"a:c1", "a:go", "b:c1", "b:next"}, trailOf(m))
}

// OTP: code_change keeps the postponed events and the running timeouts:
// the new version retries the one and receives the others.
func TestOTPCodeChangeKeepsPostponedAndTimeouts(t *testing.T) {
	timed(t, nil, func(t *testing.T, m *fsmtest.Machine) {
		m.Cast(Do{Tag: "p", PostponeIn: "a"}, Do{Tag: "arm", Set: []Set{
			{Kind: "state", D: 5 * time.Second, Tag: "state"},
			{Kind: "g", D: 6 * time.Second, Tag: "g"},
		}})
		wait(m, time.Second)
		require.NoError(t, m.ChangeCode(scriptVersion("v2", nil)))
		info := m.Info()
		require.Equal(t, "v2", info.Version)
		require.Equal(t, 1, info.Postponed)
		require.ElementsMatch(t, []string{"state_timeout", "timeout:g"}, info.Timeouts)
		require.Equal(t, []string{"a:p", "a:arm", "fire state", "fire g"}, wait(m, 5*time.Second))
		m.Cast(Do{Tag: "go", To: "b"})
		require.Equal(t, []string{"a:p", "a:arm", "fire state", "fire g", "a:go", "b:p"}, trailOf(m))
	})
}
