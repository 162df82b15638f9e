package fsm

import (
	"testing"
	"time"
)

type nopShell struct{}

func (nopShell) reply(caller, any, error)                 {}
func (nopShell) hold() caller                             { return caller{} }
func (nopShell) startTimer(timeoutMsg, time.Duration) any { return nil }
func (nopShell) stopTimer(any)                            {}
func (nopShell) stop(error)                               {}
func (nopShell) drop(Event, error)                        {}

type add struct{ N int }

// BenchmarkCoreDispatch: the core's cost per event, without the actor.
func BenchmarkCoreDispatch(b *testing.B) {
	for _, reply := range []bool{false, true} {
		name := "keep"
		if reply {
			name = "keep+reply"
		}
		b.Run(name, func(b *testing.B) {
			m := Define("adder", "v1", "on", 0)
			On(m, "on", func(a add, n int) Result[int] {
				if reply {
					return Keep(n+a.N, Reply(a.N))
				}
				return Keep(n + a.N)
			})
			in, err := m.New(b.Context(), "")
			if err != nil {
				b.Fatal(err)
			}
			c := &core{code: m}
			c.setIn(in)
			var sh nopShell
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				c.dispatch(sh, Event{Payload: add{i & 0xff}}, caller{})
			}
		})
	}
}
