// Command actordemo shows Hotline's actor core at work and prints what it
// did: a supervisor-like parent that traps exits, a worker that crashes and
// is restarted, a live change of code with messages queued meanwhile, and
// an ordered shutdown. `make demo` runs it until the phone-switch demo
// takes its place.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/hotline-go/hotline/actor"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "actordemo:", err)
		os.Exit(1)
	}
}

// A phone line: counts the digits it was sent; panics on a bad one.
type line struct {
	version string
	digits  int
	out     io.Writer
}

type digit byte
type status struct{}

func (l *line) Receive(c *actor.Context, msg any) {
	switch m := msg.(type) {
	case digit:
		if m > 9 {
			panic(fmt.Sprintf("bad digit %d", m))
		}
		l.digits++
	case status:
		c.Reply(fmt.Sprintf("%s: %d digits", l.version, l.digits))
	}
}

func (l *line) Terminate(c *actor.Context, reason error) {
	fmt.Fprintf(l.out, "   line %v terminating: %v\n", c.Self(), reason)
}

// The parent restarts its line when it crashes, as a supervisor would.
type parent struct {
	line     actor.Ref
	restarts chan actor.Ref
	out      io.Writer
}

func (p *parent) Init(c *actor.Context) error {
	c.TrapExits(true)
	return p.start(c)
}

func (p *parent) start(c *actor.Context) error {
	r, err := c.Spawn(&line{version: "v1", out: p.out}, actor.LinkTo(c.Self()))
	p.line = r
	return err
}

func (p *parent) Receive(c *actor.Context, msg any) {
	switch m := msg.(type) {
	case actor.Exit:
		if m.From == p.line && !actor.IsNormal(m.Reason) {
			var pe *actor.PanicError
			if errors.As(m.Reason, &pe) {
				fmt.Fprintf(p.out, "   parent: line %v crashed (%v); restarting it\n", m.From, pe.Value)
			}
			if err := p.start(c); err != nil {
				c.Stop(err)
				return
			}
			p.restarts <- p.line
		}
	case string: // "which"
		c.Reply(p.line)
	}
}

func run(out io.Writer) error {
	ctx := context.Background()
	sys := actor.NewSystem(actor.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))

	fmt.Fprintln(out, "1. spawn a parent that traps exits, and its linked line")
	p := &parent{restarts: make(chan actor.Ref, 1), out: out}
	par, err := sys.Spawn(p, actor.WithName("parent"))
	if err != nil {
		return err
	}
	v, err := actor.Call(ctx, par, "which")
	if err != nil {
		return err
	}
	ln := v.(actor.Ref)
	for _, d := range []digit{5, 5, 5} {
		if err := actor.Send(ln, d); err != nil {
			return err
		}
	}
	st, err := actor.Call(ctx, ln, status{})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   %v says %q\n", ln, st)

	fmt.Fprintln(out, "2. crash the line with a bad digit: the panic becomes its exit reason")
	if err := actor.Send(ln, digit(42)); err != nil {
		return err
	}
	ln = <-p.restarts
	st, err = actor.Call(ctx, ln, status{})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   restarted line %v says %q\n", ln, st)

	fmt.Fprintln(out, "3. live code change: suspend, send while suspended, change code, resume")
	if err := actor.Suspend(ctx, ln); err != nil {
		return err
	}
	for _, d := range []digit{1, 2, 3, 4} {
		if err := actor.Send(ln, d); err != nil {
			return err
		}
	}
	err = actor.ChangeCode(ctx, ln, func(old actor.Behavior) (actor.Behavior, error) {
		o := old.(*line)
		return &line{version: "v2", digits: o.digits, out: o.out}, nil // migrate the state
	})
	if err != nil {
		return err
	}
	if err := actor.Resume(ctx, ln); err != nil {
		return err
	}
	st, err = actor.Call(ctx, ln, status{})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   after the change %v says %q (the 4 digits sent while suspended were kept)\n", ln, st)

	fmt.Fprintf(out, "4. shut down in reverse spawn order (%d actors)\n", sys.Count())
	if err := sys.Shutdown(ctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "   done: %d actors left\n", sys.Count())
	return nil
}
