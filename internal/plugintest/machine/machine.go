// Package machine is the machine that the tests of package plugin run
// both in-process and in a plugin process (internal/plugintest/plugin): a counter, in two
// versions whose data differ. v1's Bump and Flag read feature flags.
package machine

import (
	"errors"
	"os"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/fsm"
)

// Events.
type (
	Incr     struct{ By int }              // cast: adds By (postponed while armed)
	Get      struct{}                      // call: replies a Count
	Arm      struct{ After time.Duration } // call: to "armed", with a state timeout
	Fired    struct{ N int }               // the state timeout's event
	Boom     struct{}                      // panics
	Quit     struct{}                      // call: replies "bye", stops with "quit"
	Crash    struct{}                      // exits the process (status 3)
	HangOnce struct{ Path string }         // call: hangs if no file is at Path (creating it), else counts and replies a Count
	Bump     struct{}                      // call: adds 1, or 100 if flag "big" is on; replies "on" or "off"
	Flag     struct{ Name string }         // call: replies whether the flag is on
	Pad      struct {
		Blob []byte
		Note string
	} // call: counted; a Blob replaces the data's, replies N
)

// Count is Get's reply.
type Count struct {
	N     int
	State string
}

// Data1 is the data of v1.
type Data1 struct {
	N    int
	Seen []string
	Blob []byte
}

// Data2 is the data of v2: N is now Count.
type Data2 struct {
	Count int
	Seen  []string
	Blob  []byte
}

// ErrQuit is Quit's stop reason.
var ErrQuit = errors.New("quit")

// V1 returns version v1.
func V1() *fsm.Machine[Data1] {
	m := fsm.Define("counter", "v1", "idle", Data1{})
	fsm.On(m, "idle", func(e Incr, d Data1) fsm.Result[Data1] {
		d.N += e.By
		d.Seen = append(d.Seen, "incr")
		return fsm.Keep(d)
	})
	fsm.On(m, "armed", func(_ Incr, d Data1) fsm.Result[Data1] { return fsm.Keep(d, fsm.Postpone()) })
	fsm.OnAny(m, func(_ Get, d Data1) fsm.Result[Data1] { return fsm.Keep(d, fsm.Reply(Count{N: d.N})) })
	fsm.On(m, "idle", func(a Arm, d Data1) fsm.Result[Data1] {
		return fsm.Next("armed", d, fsm.StateTimeout(a.After, Fired{N: d.N}), fsm.Reply("armed"))
	})
	fsm.On(m, "armed", func(f Fired, d Data1) fsm.Result[Data1] {
		d.Seen = append(d.Seen, "fired")
		return fsm.Next("idle", d, fsm.NextEvent(Incr{By: 1000 + f.N}))
	})
	m.Enter("armed", func(_ string, d Data1) fsm.Result[Data1] {
		d.Seen = append(d.Seen, "enter armed")
		return fsm.Keep(d)
	})
	fsm.OnAny(m, func(Boom, Data1) fsm.Result[Data1] { panic("boom") })
	fsm.OnAny(m, func(Crash, Data1) fsm.Result[Data1] { os.Exit(3); return fsm.Result[Data1]{} })
	fsm.OnAny(m, func(h HangOnce, d Data1) fsm.Result[Data1] {
		if _, err := os.Stat(h.Path); err != nil {
			if err := os.WriteFile(h.Path, nil, 0o600); err == nil {
				select {} // until the host kills the process
			}
		}
		d.N++
		return fsm.Keep(d, fsm.Reply(Count{N: d.N}))
	})
	fsm.OnAny(m, func(_ Quit, d Data1) fsm.Result[Data1] { return fsm.StopWith(ErrQuit, d, fsm.Reply("bye")) })
	fsm.OnAnyFlags(m, func(_ Bump, d Data1, f fsm.Flags) fsm.Result[Data1] {
		if f.On("big") {
			d.N += 100
			return fsm.Keep(d, fsm.Reply("on"))
		}
		d.N++
		return fsm.Keep(d, fsm.Reply("off"))
	})
	fsm.OnAnyFlags(m, func(q Flag, d Data1, f fsm.Flags) fsm.Result[Data1] {
		return fsm.Keep(d, fsm.Reply(f.On(q.Name)))
	})
	fsm.OnAny(m, func(p Pad, d Data1) fsm.Result[Data1] {
		d.N++
		if p.Blob != nil {
			d.Blob = p.Blob
		}
		return fsm.Keep(d, fsm.Reply(d.N))
	})
	return m
}

// V2 returns version v2, which upgrades from and downgrades to v1.
func V2() *fsm.Machine[Data2] {
	m := fsm.Define("counter", "v2", "idle", Data2{})
	fsm.On(m, "idle", func(e Incr, d Data2) fsm.Result[Data2] {
		d.Count += 2 * e.By // v2 counts double
		d.Seen = append(d.Seen, "incr2")
		return fsm.Keep(d)
	})
	fsm.OnAny(m, func(_ Get, d Data2) fsm.Result[Data2] {
		return fsm.Keep(d, fsm.Reply(Count{N: d.Count, State: "v2"}))
	})
	fsm.OnAny(m, func(Boom, Data2) fsm.Result[Data2] { panic("boom v2") })
	fsm.OnAny(m, func(_ Quit, d Data2) fsm.Result[Data2] { return fsm.StopWith(ErrQuit, d, fsm.Reply("bye")) })
	m.OnUpgrade(func(from, state string, raw msgpack.RawMessage) (string, Data2, error) {
		var d1 Data1
		if err := msgpack.Unmarshal(raw, &d1); err != nil {
			return "", Data2{}, err
		}
		return state, Data2{Count: d1.N, Seen: append(d1.Seen, "upgraded from "+from), Blob: d1.Blob}, nil
	})
	m.OnDowngrade(func(to, state string, d Data2) (string, any, error) {
		return state, Data1{N: d.Count, Seen: append(d.Seen, "downgraded to "+to), Blob: d.Blob}, nil
	})
	return m
}
