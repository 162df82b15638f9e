// Command plugin is a plugin binary that serves two versions of a door
// machine: the same declarations as an in-process machine, and a main of
// one line. See README.md for the host side.
package main

import (
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/plugin"
)

// Events, decoded by name from what the host sends.
type (
	Open  struct{}
	Close struct{}
	Count struct{} // a call: how many times was the door opened?
)

// Door is the data of v1.
type Door struct{ Opened int }

// DoorV2 is the data of v2, which also remembers who opened it last.
type DoorV2 struct {
	Opened int
	By     string
}

// OpenBy is v2's Open, with a name.
type OpenBy struct{ Who string }

func v1() *fsm.Machine[Door] {
	m := fsm.Define("door", "v1", "closed", Door{})
	fsm.On(m, "closed", func(_ Open, d Door) fsm.Result[Door] {
		d.Opened++
		return fsm.Next("open", d)
	})
	fsm.On(m, "open", func(_ Close, d Door) fsm.Result[Door] { return fsm.Next("closed", d) })
	fsm.OnAny(m, func(_ Count, d Door) fsm.Result[Door] { return fsm.Keep(d, fsm.Reply(d.Opened)) })
	return m
}

func v2() *fsm.Machine[DoorV2] {
	m := fsm.Define("door", "v2", "closed", DoorV2{})
	fsm.On(m, "closed", func(o OpenBy, d DoorV2) fsm.Result[DoorV2] {
		d.Opened++
		d.By = o.Who
		return fsm.Next("open", d)
	})
	fsm.On(m, "open", func(_ Close, d DoorV2) fsm.Result[DoorV2] { return fsm.Next("closed", d) })
	fsm.OnAny(m, func(_ Count, d DoorV2) fsm.Result[DoorV2] { return fsm.Keep(d, fsm.Reply(d.Opened)) })
	m.OnUpgrade(func(_, state string, raw msgpack.RawMessage) (string, DoorV2, error) {
		var d Door
		err := msgpack.Unmarshal(raw, &d)
		return state, DoorV2{Opened: d.Opened}, err
	})
	m.OnDowngrade(func(_, state string, d DoorV2) (string, any, error) {
		return state, Door{Opened: d.Opened}, nil
	})
	return m
}

func main() { plugin.Serve(v1(), v2()) }
