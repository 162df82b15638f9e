package phone_test

import (
	"context"
	"fmt"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/examples/phoneswitch/phone"
	"github.com/hotline-go/hotline/fsm"
)

// A phone's handler answers with an Output: lines for its connection, and
// signals for another phone, which the switch delivers.
func ExampleV1() {
	ctx := context.Background()
	sys := actor.NewSystem()
	defer func() {
		if err := sys.Shutdown(ctx); err != nil {
			fmt.Println(err)
		}
	}()
	ref, err := fsm.Start(ctx, sys, phone.V1(), fsm.WithID("100"))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, ev := range []any{phone.OffHook{At: 1}, phone.Key{Key: "2"}, phone.Key{Key: "0"}, phone.Key{Key: "0"}, phone.Key{Key: "#"}} {
		out, err := fsm.Call(ctx, ref, ev)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%+v\n", out)
	}
	// Output:
	// {Lines:[DIALTONE] To: Signals:[]}
	// {Lines:[] To: Signals:[]}
	// {Lines:[] To: Signals:[]}
	// {Lines:[] To: Signals:[]}
	// {Lines:[] To:200 Signals:[{Kind:ring At:0 Seq:0 Payload:}]}
}

// Peer reads from a phone's snapshot, of either version, whom it is in a
// call with.
func ExamplePeer() {
	ctx := context.Background()
	sys := actor.NewSystem()
	defer func() {
		if err := sys.Shutdown(ctx); err != nil {
			fmt.Println(err)
		}
	}()
	ref, err := fsm.Start(ctx, sys, phone.V2(), fsm.WithID("200"))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, ev := range []any{phone.Ring{From: "100"}, phone.OffHook{At: 1}} {
		if _, err := fsm.Call(ctx, ref, ev); err != nil {
			fmt.Println(err)
			return
		}
	}
	info, err := fsm.Inspect(ctx, ref)
	if err != nil {
		fmt.Println(err)
		return
	}
	peer, err := phone.Peer(info.Snapshot())
	fmt.Println(info.State, peer, err)
	// Output:
	// in_progress 100 <nil>
}
