package exchange_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/examples/phoneswitch/exchange"
	"github.com/hotline-go/hotline/examples/phoneswitch/phone"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/upgrade"
	"github.com/vmihailenco/msgpack/v5"
)

// A switch on a loopback port, one phone, and an upgrade of every live
// phone by the release handler.
func Example() {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := actor.NewSystem(actor.WithLogger(log))
	rh, err := upgrade.NewReleaseHandler(sys)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, code := range []fsm.Code{phone.V1(), phone.V2()} {
		if err := rh.Register(code); err != nil {
			fmt.Println(err)
			return
		}
	}
	sw, err := exchange.New(sys, rh, exchange.WithLogger(log))
	if err != nil {
		fmt.Println(err)
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	served := make(chan error, 1)
	go func() { served <- sw.Serve(ln) }()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	r := bufio.NewReader(c)
	ask := func(line string) {
		if _, err := fmt.Fprintln(c, line); err != nil {
			fmt.Println(err)
			return
		}
		reply, err := r.ReadString('\n')
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Print(reply)
	}
	ask("REGISTER 5551234")
	ask("STATUS")
	rep, err := rh.Upgrade(ctx, phone.Name, "v2")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rep.From, "->", rep.To, "phones:", rep.Changed)
	ask("STATUS")

	fmt.Println(c.Close(), ln.Close(), <-served, sw.Close(ctx), sys.Shutdown(ctx), rh.Close(ctx))
	// Output:
	// OK REGISTERED 5551234
	// STATUS 5551234 off v1 calls=0 frames_in=0 frames_out=0
	// [v1] -> v2 phones: 1
	// STATUS 5551234 off v2 calls=0 frames_in=0 frames_out=0
	// <nil> <nil> <nil> <nil> <nil> <nil>
}

// The new process of a binary restart takes over a line with Restore, and
// serves it once it is ready: the STATUS that the old process had read
// and not handled is answered only after Ready. (A real process gets the
// machines and connections from upgrade.Handoff.Receive; here they are
// made by hand, the connection a net.Pipe.)
func ExampleSwitch_Ready() {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := actor.NewSystem(actor.WithLogger(log))
	rh, err := upgrade.NewReleaseHandler(sys)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := rh.Register(phone.V1()); err != nil {
		fmt.Println(err)
		return
	}
	sw, err := exchange.New(sys, rh, exchange.WithLogger(log))
	if err != nil {
		fmt.Println(err)
		return
	}
	ref, err := rh.Start(ctx, phone.Name, fsm.WithID("5551234"))
	if err != nil {
		fmt.Println(err)
		return
	}
	meta, err := msgpack.Marshal(exchange.LineMeta{Number: "5551234"})
	if err != nil {
		fmt.Println(err)
		return
	}
	client, server := net.Pipe()
	got := &upgrade.Restored{
		Machines: map[string]actor.Ref{"5551234": ref},
		Conns: map[string]upgrade.RestoredConn{
			"c1-1": {Conn: server, Owner: "5551234", Unread: []byte("STATUS\n"), Meta: meta},
		},
	}
	if err := sw.Restore(ctx, got); err != nil { // before upgrade.Restarter.Ready
		fmt.Println(err)
		return
	}
	fmt.Println("restored; nothing is answered before Ready")
	sw.Ready() // once upgrade.Restarter.Ready returned nil
	reply, err := bufio.NewReader(client).ReadString('\n')
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(reply)

	fmt.Println(client.Close(), sw.Close(ctx), sys.Shutdown(ctx), rh.Close(ctx))
	// Output:
	// restored; nothing is answered before Ready
	// STATUS 5551234 off v1 calls=0 frames_in=0 frames_out=0
	// <nil> <nil> <nil> <nil>
}
