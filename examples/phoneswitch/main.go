// Command phoneswitch is the phone-switch demo: a switch that routes calls
// between phones connected over TCP, each phone a state machine whose code
// is upgraded, rolled back and whose host binary is replaced while calls go
// on. See README.md and doc/phoneswitch.md.
//
//	phoneswitch serve --listen ADDR --admin SOCKET --version v1 [--in-process=false --plugins DIR] [--pid-file FILE] [--http ADDR]
//	phoneswitch ctl --admin SOCKET status|upgrade VERSION [--strategy all|rolling|canary|new-sessions|shadow] [--batch N] [--canary N] [--window D] [--share P]|rollback|flags [NAME [on|off|N%]] [--reload]
//	phoneswitch load --addr ADDR --phones N --duration D
//	phoneswitch demo [--phones N] [--duration D] [--canary N] [--window D] [--in-process=false [--plugins DIR]]
//	phoneswitch soak [--duration D] [--seed N] [--phones N] [--in-process=false] [--plugins DIR]
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// errUsage is a command line that does not parse; the flag package has
// said why already.
var errUsage = errors.New("usage")

const usage = `usage:
  phoneswitch serve --listen ADDR --admin SOCKET --version v1 [--in-process=false --plugins DIR] [--pid-file FILE] [--http ADDR]
  phoneswitch ctl --admin SOCKET status|upgrade VERSION [--strategy all|rolling|canary|new-sessions|shadow] [--batch N] [--canary N] [--window D] [--share P]|rollback|flags [NAME [on|off|N%]] [--reload]
  phoneswitch load --addr ADDR --phones N --duration D
  phoneswitch demo [--phones N] [--duration D] [--canary N] [--window D] [--in-process=false [--plugins DIR]]
  phoneswitch soak [--duration D] [--seed N] [--phones N] [--in-process=false] [--plugins DIR]
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "phoneswitch:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "ctl":
		return ctl(ctx, args[1:], stdout, stderr)
	case "load":
		return load(ctx, args[1:], stdout, stderr)
	case "demo":
		return demo(ctx, args[1:], stdout, stderr)
	case "soak":
		return soak(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
