package main

// `phoneswitch ctl` is the client of the release handler's admin API
// (upgrade.ServeAdminListener in serve): JSON lines on the Unix socket
// --admin, through upgrade.DialAdmin. Each command prints one line on
// success (after the progress of a rollout) and exits 0; on failure it
// prints one line on stderr and exits 1.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hotline-go/hotline/examples/phoneswitch/phone"
	"github.com/hotline-go/hotline/flags"
	"github.com/hotline-go/hotline/upgrade"
)

// adminTimeout bounds one admin command: a canary's window and a rolling
// rollout's pauses fit in it.
const adminTimeout = 2 * time.Minute

// defaultWindow is the canary's watch window when --window is not given: a
// few seconds, so that a canary of a handful of phones ends well within
// 20 s.
const defaultWindow = 3 * time.Second

// strategies maps --strategy to the name in an upgrade.StrategySpec.
var strategies = map[string]string{
	"all": "all", "rolling": "rolling", "canary": "canary", "new-sessions": "new-sessions", "shadow": "shadow",
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
	var req upgrade.AdminRequest
	switch cmd {
	case "status", "rollback":
		if len(rest) != 0 {
			return fmt.Errorf("ctl %s: unexpected argument %q", cmd, rest[0])
		}
		req = upgrade.AdminRequest{Op: cmd}
		if cmd == "rollback" {
			req.Machine = phone.Name
		}
	case "upgrade":
		var err error
		if req, err = parseUpgrade(rest, stderr); err != nil {
			return err
		}
	case "flags":
		var err error
		if req, err = parseFlags(rest, stderr); err != nil {
			return err
		}
	default:
		return fmt.Errorf("ctl: unknown command %q (want status, upgrade, rollback or flags)", cmd)
	}
	req.Who = "ctl"
	if u := os.Getenv("USER"); u != "" {
		req.Who = "ctl:" + u // who changed a flag or moved the phones, in the switch's log
	}
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	c, err := upgrade.DialAdmin(ctx, *socket)
	if err != nil {
		return fmt.Errorf("ctl %s: %w", cmd, err)
	}
	bar := newProgress(stdout)
	resp, err := c.Do(ctx, req, bar.show)
	bar.end()
	if err != nil {
		// The switch's own words, without the client's prefix.
		return fmt.Errorf("ctl %s: %s", cmd, strings.TrimPrefix(oneLine(err), "upgrade: admin: "))
	}
	switch {
	case cmd == "status":
		_, err = fmt.Fprintln(stdout, statusLine(resp.Status))
	case cmd == "flags":
		err = printFlags(stdout, resp.Flags, req)
	default:
		_, err = fmt.Fprintln(stdout, reportLine(resp.Report))
	}
	return err
}

// parseUpgrade parses `upgrade VERSION [--strategy S] [--batch N]
// [--canary N] [--window D]`, flags before or after VERSION.
func parseUpgrade(args []string, stderr io.Writer) (upgrade.AdminRequest, error) {
	fs := flag.NewFlagSet("upgrade", flag.ContinueOnError)
	fs.SetOutput(stderr)
	strategy := fs.String("strategy", "all", "`STRATEGY`: all, rolling, canary, new-sessions or shadow")
	batch := fs.Int("batch", 0, "rolling: move `N` phones at a time (default 1)")
	canary := fs.Int("canary", 0, "canary: move `N` phones first and watch them (default 1)")
	window := fs.Duration("window", 0, "canary: how long the canaries are watched (default 3s); rolling: the pause between batches (default none); shadow: how long the shadow runs (default: until the next upgrade)")
	share := fs.Float64("share", 100, "new-sessions: the `PERCENT` of new phones that start on VERSION (raise it by upgrading again)")
	var version string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		version, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return upgrade.AdminRequest{}, errUsage
	}
	switch {
	case version == "" && fs.NArg() > 0:
		version = fs.Arg(0)
		if fs.NArg() > 1 {
			return upgrade.AdminRequest{}, fmt.Errorf("ctl upgrade: unexpected argument %q", fs.Arg(1))
		}
	case fs.NArg() > 0:
		return upgrade.AdminRequest{}, fmt.Errorf("ctl upgrade: unexpected argument %q", fs.Arg(0))
	}
	if version == "" {
		return upgrade.AdminRequest{}, errors.New("ctl upgrade: want a VERSION")
	}
	name, ok := strategies[*strategy]
	if !ok {
		return upgrade.AdminRequest{}, fmt.Errorf("ctl upgrade: unknown strategy %q (want all, rolling, canary, new-sessions or shadow)", *strategy)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	spec := upgrade.StrategySpec{Name: name}
	switch {
	case set["batch"] && name != "rolling":
		return upgrade.AdminRequest{}, fmt.Errorf("ctl upgrade: --batch is for --strategy rolling, not %s", *strategy)
	case set["canary"] && name != "canary":
		return upgrade.AdminRequest{}, fmt.Errorf("ctl upgrade: --canary is for --strategy canary, not %s", *strategy)
	case set["window"] && name != "canary" && name != "rolling" && name != "shadow":
		return upgrade.AdminRequest{}, fmt.Errorf("ctl upgrade: --window is for --strategy canary, rolling or shadow, not %s", *strategy)
	case set["share"] && name != "new-sessions":
		return upgrade.AdminRequest{}, fmt.Errorf("ctl upgrade: --share is for --strategy new-sessions, not %s", *strategy)
	case *share < 0 || *share > 100:
		return upgrade.AdminRequest{}, fmt.Errorf("ctl upgrade: --share %v: want a percentage from 0 to 100", *share)
	case *batch < 0 || *canary < 0 || *window < 0:
		return upgrade.AdminRequest{}, errors.New("ctl upgrade: --batch, --canary and --window cannot be negative")
	}
	spec.Batch, spec.Canary = *batch, *canary
	if name == "new-sessions" {
		spec.Share = *share
	}
	if name == "canary" && !set["window"] {
		*window = defaultWindow
	}
	if *window > 0 {
		spec.Window = window.String()
	}
	return upgrade.AdminRequest{Op: "upgrade", Machine: phone.Name, To: version, Strategy: &spec}, nil
}

// statusLine summarises the phone machine's status: the version new phones
// start on, the one before it, and the phones on each version.
func statusLine(st []upgrade.MachineStatus) string {
	for _, ms := range st {
		if ms.Machine != phone.Name {
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "version=%s permanent=%s", ms.Current, ms.Permanent)
		for _, v := range ms.Versions {
			fmt.Fprintf(&b, " %s=%d", v.Version, v.Machines)
		}
		fmt.Fprintf(&b, " pid=%d", os.Getpid())
		if l := ms.Last; l != nil {
			fmt.Fprintf(&b, " last=%s:%s->%s:%s", l.Op, strings.Join(l.From, ","), l.To, l.Result)
		}
		return b.String()
	}
	return "no phone machine"
}

// reportLine is one line of an upgrade's or a rollback's report. phones=
// is the phones the move left on the new version. A shadow moves none, so
// its line counts instead the phones it ran beside: shadowed= (from its
// report, when it ran for a window), of which reloaded= were live at its
// start and put under it, and started= registered during it; exited=
// were live at its start and gone before their reload.
func reportLine(r *upgrade.Report) string {
	if r == nil {
		return "no report"
	}
	from := strings.Join(r.From, ",")
	if from == "" {
		from = "-"
	}
	if r.Strategy == "shadow" {
		return shadowLine(r, from)
	}
	line := fmt.Sprintf("from=%s to=%s phones=%d pause=%s strategy=%s result=%s", from, r.To, r.Changed, r.MaxPause, r.Strategy, r.Result)
	if r.Verdict != "" {
		line += fmt.Sprintf(" canaries=%d verdict=%s", r.Canaries, r.Verdict)
	}
	if r.Exited > 0 {
		line += fmt.Sprintf(" exited=%d", r.Exited)
	}
	return line
}

// shadowLine is reportLine for a shadow.
func shadowLine(r *upgrade.Report, from string) string {
	line := fmt.Sprintf("from=%s to=%s", from, r.To)
	sr := r.Shadow
	if sr != nil {
		line += fmt.Sprintf(" shadowed=%d", sr.Machines)
	}
	line += fmt.Sprintf(" reloaded=%d", r.Changed)
	if sr != nil {
		line += fmt.Sprintf(" started=%d", max(sr.Machines-r.Changed, 0))
	}
	line += fmt.Sprintf(" exited=%d pause=%s strategy=%s result=%s", r.Exited, r.MaxPause, r.Strategy, r.Result)
	if sr == nil {
		return line
	}
	line += fmt.Sprintf(" mirrored=%d diverged=%d", sr.Mirrored, sr.Diverged)
	if sr.Failed > 0 {
		line += fmt.Sprintf(" failed=%d", sr.Failed)
	}
	for _, ev := range slices.Sorted(maps.Keys(sr.ByEvent)) {
		line += fmt.Sprintf(" diverged[%s]=%d", ev, sr.ByEvent[ev])
	}
	return line
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

// parseFlags parses `flags`, `flags NAME`, `flags NAME VALUE` (on, off or
// N%) and `flags --reload`.
func parseFlags(args []string, stderr io.Writer) (upgrade.AdminRequest, error) {
	fs := flag.NewFlagSet("ctl flags", flag.ContinueOnError)
	fs.SetOutput(stderr)
	reload := fs.Bool("reload", false, "reload the switch's flag file (serve --flags FILE)")
	if err := fs.Parse(args); err != nil {
		return upgrade.AdminRequest{}, errUsage
	}
	req := upgrade.AdminRequest{Op: "flags", Reload: *reload}
	switch n := fs.NArg(); {
	case *reload && n > 0:
		return req, fmt.Errorf("ctl flags: --reload takes no flag name (got %q)", fs.Arg(0))
	case n > 2:
		return req, fmt.Errorf("ctl flags: unexpected argument %q (want [NAME [on|off|N%%]] or --reload)", fs.Arg(2))
	case n == 2:
		req.Flag, req.Value = fs.Arg(0), fs.Arg(1)
	case n == 1:
		req.Flag = fs.Arg(0)
	}
	return req, nil
}

// printFlags writes one line a flag: its name, value, and last change.
func printFlags(w io.Writer, st []flags.Status, req upgrade.AdminRequest) error {
	if len(st) == 0 {
		what := "no feature flags are set"
		if req.Reload {
			what = "the flag file changed nothing"
		}
		_, err := fmt.Fprintln(w, what)
		return err
	}
	for _, s := range st {
		line := fmt.Sprintf("flag=%s value=%s", s.Flag, s.Value)
		if s.Who != "" {
			line += fmt.Sprintf(" old=%s who=%s when=%s", s.Old, s.Who, s.When.UTC().Format(time.RFC3339))
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}
