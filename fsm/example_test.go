package fsm_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	"github.com/vmihailenco/msgpack/v5"
)

// The phone of DESIGN.md, cut down to one screen. Events are types; the
// data is a Line; each handler takes one event in one state.
type (
	Dial        struct{ Digit int } // a key pressed
	OnHook      struct{}            // the handset put down
	DialTimeout struct{}            // the state timeout's event
	Number      struct{}            // a call: what was dialled?
	Line        struct{ Digits []int }
)

func line() *fsm.Machine[Line] {
	m := fsm.Define("line", "v1", "off", Line{})
	fsm.On(m, "off", func(d Dial, l Line) fsm.Result[Line] {
		return fsm.Next("dialing", Line{Digits: []int{d.Digit}}, fsm.StateTimeout(10*time.Second, DialTimeout{}))
	})
	fsm.On(m, "dialing", func(d Dial, l Line) fsm.Result[Line] {
		l.Digits = append(l.Digits, d.Digit)
		if len(l.Digits) < 3 {
			return fsm.Keep(l)
		}
		return fsm.Next("connecting", l) // leaving "dialing" cancels its timeout
	})
	fsm.On(m, "dialing", func(_ DialTimeout, l Line) fsm.Result[Line] { return fsm.Next("off", Line{}) })
	fsm.OnAny(m, func(_ OnHook, l Line) fsm.Result[Line] { return fsm.Next("off", Line{}) })
	fsm.OnAny(m, func(_ Number, l Line) fsm.Result[Line] { return fsm.Keep(l, fsm.Reply(l.Digits)) })
	return m
}

func Example() {
	ctx := context.Background()
	sys := actor.NewSystem()
	defer shutdownExample(sys)

	ref, err := fsm.Start(ctx, sys, line(), fsm.WithID("555-0100"))
	if err != nil {
		panic(err)
	}
	for _, d := range []int{4, 1, 1} {
		if err := fsm.Cast(ref, Dial{d}); err != nil {
			panic(err)
		}
	}
	number, err := fsm.Call(ctx, ref, Number{})
	if err != nil {
		panic(err)
	}
	info, err := fsm.Inspect(ctx, ref)
	if err != nil {
		panic(err)
	}
	fmt.Println(number, info.State)

	_, err = fsm.Call(ctx, ref, "hello")
	fmt.Println(err)
	// Output:
	// [4 1 1] connecting
	// fsm: no handler for event string in state "connecting" of line v1
}

// LineV2 is version 2's data: the number as a string.
type LineV2 struct{ Number string }

// lineV2 is version 2 of the line (its other handlers are left out): its
// UPGRADE reads v1's data as msgpack.
func lineV2() *fsm.Machine[LineV2] {
	m := fsm.Define("line", "v2", "off", LineV2{})
	fsm.OnAny(m, func(_ Number, l LineV2) fsm.Result[LineV2] { return fsm.Keep(l, fsm.Reply(l.Number)) })
	m.OnUpgrade(func(from, state string, data msgpack.RawMessage) (string, LineV2, error) {
		var old Line
		if err := msgpack.Unmarshal(data, &old); err != nil {
			return "", LineV2{}, err
		}
		var l LineV2
		for _, d := range old.Digits {
			l.Number += strconv.Itoa(d)
		}
		return state, l, nil
	})
	return m
}

// A running machine moves to version 2: its data goes through UPGRADE, and
// the events that arrive meanwhile wait for the new version.
func ExampleChangeCode() {
	ctx := context.Background()
	sys := actor.NewSystem()
	defer shutdownExample(sys)

	ref, err := fsm.Start(ctx, sys, line())
	if err != nil {
		panic(err)
	}
	for _, d := range []int{4, 1, 1} {
		if err := fsm.Cast(ref, Dial{d}); err != nil {
			panic(err)
		}
	}
	if err := fsm.Sync(ctx, ref); err != nil { // let v1 handle them
		panic(err)
	}
	if err := fsm.ChangeCode(ctx, ref, lineV2()); err != nil {
		panic(err)
	}
	number, err := fsm.Call(ctx, ref, Number{})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%q\n", number)
	// Output:
	// "411"
}

// A change of code in two short suspensions: Stage copies the data of the
// suspended machine, Prepare runs UPGRADE on the copy while the machine
// runs, and Commit swaps the new version in, with the machine suspended
// only for that. Had the machine handled an event after Stage, Commit
// would have made the whole change on its data as it was then.
func ExampleStager() {
	ctx := context.Background()
	sys := actor.NewSystem()
	defer shutdownExample(sys)

	ref, err := fsm.Start(ctx, sys, line())
	if err != nil {
		panic(err)
	}
	for _, d := range []int{5, 5, 5} {
		if err := fsm.Cast(ref, Dial{d}); err != nil {
			panic(err)
		}
	}
	if err := fsm.Sync(ctx, ref); err != nil {
		panic(err)
	}
	st := fsm.NewStager()
	defer st.Release()
	suspended := func(f func() error) error {
		if err := actor.Suspend(ctx, ref); err != nil {
			return err
		}
		err := f()
		return errors.Join(err, actor.Resume(ctx, ref))
	}
	if err := suspended(func() error { return st.Stage(ctx, ref) }); err != nil {
		panic(err)
	}
	if err := st.Prepare(ctx, lineV2()); err != nil {
		panic(err)
	}
	if err := suspended(func() error { return st.Commit(ctx, ref) }); err != nil {
		panic(err)
	}
	number, err := fsm.Call(ctx, ref, Number{})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%q\n", number)
	// Output:
	// "555"
}

// A failed UPGRADE leaves the machine on its version, with its data.
func ExampleUpgradeError() {
	ctx := context.Background()
	sys := actor.NewSystem()
	defer shutdownExample(sys)

	ref, err := fsm.Start(ctx, sys, line(), fsm.WithID("555-0100"))
	if err != nil {
		panic(err)
	}
	broken := fsm.Define("line", "v3", "off", 0) // its data is an int: v1's does not decode
	err = fsm.ChangeCode(ctx, ref, broken)
	fmt.Println(err)
	info, err := fsm.Inspect(ctx, ref)
	if err != nil {
		panic(err)
	}
	fmt.Println(info.Version, info.State)
	// Output:
	// fsm: line 555-0100: upgrade v1 -> v3: fsm: bad machine data: line v3: msgpack: invalid code=81 decoding int64
	// v1 off
}

func shutdownExample(sys *actor.System) {
	if err := sys.Shutdown(context.Background()); err != nil {
		panic(err)
	}
}
