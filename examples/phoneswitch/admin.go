package main

// The minimal admin API: a Unix socket (0600), one command per connection,
// one line each way and then some:
//
//	status             -> OK version=v1 previous= phones=2 conns=2 pid=123 state=ready
//	upgrade VERSION    -> OK from=v1 to=v2 phones=2 pause=1.2ms
//	rollback           -> OK from=v2 to=v1 phones=2 pause=0.9ms
//	anything else      -> ERR <why>
//
// The release handler's admin API (strategies, flags, progress) replaces
// this file; `phoneswitch ctl` is its client, below.

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hotline-go/hotline/examples/phoneswitch/exchange"
	"github.com/hotline-go/hotline/upgrade"
)

const adminTimeout = 30 * time.Second

type admin struct {
	sw  *exchange.Switch
	r   *upgrade.Restarter
	log *slog.Logger
}

func newAdmin(sw *exchange.Switch, r *upgrade.Restarter, log *slog.Logger) *admin {
	return &admin{sw: sw, r: r, log: log}
}

// serve answers admin commands on ln until it is closed.
func (a *admin) serve(ctx context.Context, ln net.Listener) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				a.log.Error("admin: accept", "err", err)
			}
			return
		}
		wg.Go(func() {
			defer func() {
				if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
					a.log.Debug("admin: close", "err", err)
				}
			}()
			if err := c.SetDeadline(time.Now().Add(adminTimeout)); err != nil {
				return
			}
			line, err := bufio.NewReader(io.LimitReader(c, 1024)).ReadString('\n')
			if err != nil {
				return
			}
			reply := a.handle(ctx, strings.TrimSpace(line))
			if _, err := io.WriteString(c, reply+"\n"); err != nil {
				a.log.Debug("admin: write", "err", err)
			}
		})
	}
}

func (a *admin) handle(ctx context.Context, line string) string {
	f := strings.Fields(line)
	if len(f) == 0 {
		return "ERR empty command"
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), adminTimeout)
	defer cancel()
	report := func(rep exchange.Report, err error) string {
		if err != nil {
			return "ERR " + oneLine(err)
		}
		return fmt.Sprintf("OK from=%s to=%s phones=%d pause=%s", rep.From, rep.To, rep.Phones, rep.Pause)
	}
	switch {
	case f[0] == "status" && len(f) == 1:
		st := a.sw.Status()
		return fmt.Sprintf("OK version=%s previous=%s phones=%d conns=%d pid=%d state=%s",
			st.Version, st.Previous, st.Phones, st.Conns, os.Getpid(), a.r.State())
	case f[0] == "upgrade" && len(f) == 2:
		return report(a.sw.Upgrade(ctx, f[1]))
	case f[0] == "rollback" && len(f) == 1:
		return report(a.sw.Rollback(ctx))
	}
	return fmt.Sprintf("ERR unknown command %q", line)
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

// adminDo sends one command to the admin socket and returns the reply
// after "OK ", or the reply after "ERR " as an error.
func adminDo(ctx context.Context, socket, cmd string) (reply string, err error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return "", fmt.Errorf("admin socket: %w", err)
	}
	defer func() {
		if cerr := c.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("admin socket: %w", cerr)
		}
	}()
	deadline := time.Now().Add(adminTimeout + 5*time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	if err := c.SetDeadline(deadline); err != nil {
		return "", err
	}
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		return "", fmt.Errorf("admin socket: %w", err)
	}
	reply, err = bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("admin socket: no reply: %w", err)
	}
	reply = strings.TrimSuffix(reply, "\n")
	if rest, ok := strings.CutPrefix(reply, "OK"); ok {
		return strings.TrimSpace(rest), nil
	}
	return "", errors.New(strings.TrimPrefix(reply, "ERR "))
}

// ctl is the client of the admin API.
func ctl(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	socket := fs.String("admin", "", "Unix `SOCKET` of the switch's admin API")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *socket == "" {
		return errors.New("ctl: --admin SOCKET is required")
	}
	if fs.NArg() == 0 {
		return errors.New("ctl: want status, upgrade VERSION, rollback or flags")
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	var line string
	switch cmd {
	case "status", "rollback":
		if len(rest) != 0 {
			return fmt.Errorf("ctl %s: unexpected argument %q", cmd, rest[0])
		}
		line = cmd
	case "upgrade":
		up := flag.NewFlagSet("upgrade", flag.ContinueOnError)
		up.SetOutput(stderr)
		strategy := up.String("strategy", "all", "`STRATEGY`: all, rolling, canary, new-sessions or shadow")
		window := up.Duration("window", 3*time.Second, "how long a canary is watched")
		var version string
		if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
			version, rest = rest[0], rest[1:]
		}
		if err := up.Parse(rest); err != nil {
			return errUsage
		}
		if version == "" && up.NArg() > 0 {
			version = up.Arg(0)
		} else if up.NArg() > 0 {
			return fmt.Errorf("ctl upgrade: unexpected argument %q", up.Arg(0))
		}
		if version == "" {
			return errors.New("ctl upgrade: want a VERSION")
		}
		switch *strategy {
		case "all":
		case "canary":
			return fmt.Errorf("ctl upgrade: strategy \"canary\" (window %s) is not yet supported by this switch (only \"all\")", *window)
		case "rolling", "new-sessions", "shadow":
			return fmt.Errorf("ctl upgrade: strategy %q is not yet supported by this switch (only \"all\")", *strategy)
		default:
			return fmt.Errorf("ctl upgrade: unknown strategy %q (want all, rolling, canary, new-sessions or shadow)", *strategy)
		}
		line = "upgrade " + version
	case "flags":
		return errors.New("ctl flags: feature flags are not yet supported by this switch")
	default:
		return fmt.Errorf("ctl: unknown command %q (want status, upgrade, rollback or flags)", cmd)
	}
	reply, err := adminDo(ctx, *socket, line)
	if err != nil {
		return fmt.Errorf("ctl %s: %w", cmd, err)
	}
	_, err = fmt.Fprintln(stdout, reply)
	return err
}
