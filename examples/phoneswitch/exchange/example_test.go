package exchange_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/hotline-go/hotline/examples/phoneswitch/exchange"
	"github.com/hotline-go/hotline/examples/phoneswitch/phone"
)

// A switch on a loopback port, one phone, and an upgrade of every live
// phone.
func Example() {
	ctx := context.Background()
	sw, err := exchange.New(
		exchange.WithVersions(phone.V1(), phone.V2()),
		exchange.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	)
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
	rep, err := sw.Upgrade(ctx, "v2")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rep.From, "->", rep.To, "phones:", rep.Phones)
	ask("STATUS")

	fmt.Println(c.Close(), ln.Close(), <-served, sw.Close(ctx))
	// Output:
	// OK REGISTERED 5551234
	// STATUS 5551234 off v1 calls=0 frames_in=0 frames_out=0
	// v1 -> v2 phones: 1
	// STATUS 5551234 off v2 calls=0 frames_in=0 frames_out=0
	// <nil> <nil> <nil> <nil>
}
