package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hotline-go/hotline/examples/phoneswitch/phone"
	"github.com/hotline-go/hotline/upgrade"
)

// demo runs the whole story with nothing but this binary: it starts
// `phoneswitch serve` on v1, runs the load generator, runs v2 as a shadow
// of the live phones (a dark launch: v2 handles a copy of every event, its
// answers are compared and thrown away), upgrades every phone
// to v2 in the middle of calls (all at once), rolls back, upgrades again
// with the canary strategy, replaces the binary with SIGHUP, and prints a
// report. It cleans up after itself.
func demo(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	phones := fs.Int("phones", 20, "`N` simulated phones")
	duration := fs.Duration("duration", 20*time.Second, "how long the load generator places calls; the steps are spread over it")
	callLength := fs.Duration("call", 2*time.Second, "length of each call")
	window := fs.Duration("window", defaultWindow, "the canary's watch window")
	shadowFor := fs.Duration("shadow", 2*time.Second, "how long v2 runs as a shadow of the live phones before the first upgrade (0: no shadow step)")
	canaries := fs.Int("canary", 3, "`N` phones the canary upgrade moves first")
	keep := fs.Bool("keep", false, "keep the working directory (logs) after the demo")
	inProcess := fs.Bool("in-process", true, "run the phone versions compiled into the switch instead of the plugins")
	plugins := fs.String("plugins", "", "`DIR` of the phone-v1 and phone-v2 plugins and their SHA256SUMS (default: plugins/ beside this binary)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	dir, err := os.MkdirTemp("", "phoneswitch-demo-")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer func() {
		if !*keep {
			err = errors.Join(err, os.RemoveAll(dir))
		}
	}()
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return err
	}
	sw := switchProc{
		exe: exe, admin: filepath.Join(dir, "admin.sock"), pidFile: filepath.Join(dir, "switch.pid"),
		addr: addr, http: httpAddr, log: filepath.Join(dir, "switch.log"),
	}
	if !*inProcess {
		sw.args = []string{"--in-process=false"}
		if *plugins != "" {
			sw.args = append(sw.args, "--plugins", *plugins)
		}
	}
	say := func(format string, a ...any) { fmt.Fprintf(stdout, "demo: "+format+"\n", a...) }

	mode := "in process (--in-process)"
	if !*inProcess {
		dir := *plugins
		if dir == "" {
			dir = filepath.Join(filepath.Dir(exe), "plugins")
		}
		mode = "in the phone-v1 and phone-v2 plugins of " + dir
	}
	say("starting the switch on v1: %s (logs in %s); phone code runs %s", addr, sw.log, mode)
	if err := sw.start(ctx, "v1", *callLength+5*time.Second); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, sw.stop()) }()

	type loadResult struct {
		rep *loadReport
		err error
	}
	loaded := make(chan loadResult, 1)
	lcfg := loadConfig{addr: addr, phones: *phones, duration: *duration, callLength: *callLength, frameInterval: 20 * time.Millisecond, base: 10000}
	say("load: %d phones calling in pairs for %s, %s calls, a frame every %s each way", lcfg.phones, lcfg.duration, lcfg.callLength, lcfg.frameInterval)
	started := time.Now()
	go func() {
		rep, err := runLoad(ctx, lcfg)
		loaded <- loadResult{rep, err}
	}()

	type step struct {
		name  string
		run   func() (out string, pause time.Duration, err error)
		start time.Time
		end   time.Time
		pause time.Duration // the longest a phone was suspended; 0 for SIGHUP
	}
	// Each step asks the switch's admin API, as `phoneswitch ctl` does.
	admin := func(req upgrade.AdminRequest) func() (string, time.Duration, error) {
		return func() (string, time.Duration, error) {
			actx, cancel := context.WithTimeout(ctx, adminTimeout)
			defer cancel()
			c, err := upgrade.DialAdmin(actx, sw.admin)
			if err != nil {
				return "", 0, err
			}
			req.Machine, req.Who = phone.Name, "demo"
			resp, err := c.Do(actx, req, nil)
			if err != nil {
				return "", 0, errors.New(oneLine(err))
			}
			var pause time.Duration
			if resp.Report != nil {
				pause = resp.Report.MaxPause
			}
			return reportLine(resp.Report), pause, nil
		}
	}
	canary := &upgrade.StrategySpec{Name: "canary", Canary: *canaries, Window: window.String()}
	var steps []*step
	if *shadowFor > 0 {
		shadow := &upgrade.StrategySpec{Name: "shadow", Window: shadowFor.String()}
		steps = append(steps, &step{name: "shadow v2 (dark launch)", run: admin(upgrade.AdminRequest{Op: "upgrade", To: "v2", Strategy: shadow})})
	}
	steps = append(steps, []*step{
		{name: "upgrade v2 (all at once)", run: admin(upgrade.AdminRequest{Op: "upgrade", To: "v2", Strategy: &upgrade.StrategySpec{Name: "all"}})},
		{name: "rollback to v1", run: admin(upgrade.AdminRequest{Op: "rollback"})},
		{name: "upgrade v2 (canary)", run: admin(upgrade.AdminRequest{Op: "upgrade", To: "v2", Strategy: canary})},
		{name: "binary restart (SIGHUP)", run: func() (string, time.Duration, error) {
			out, err := sw.restart()
			return out, 0, err
		}},
		{name: "feature flag hd-audio on", run: func() (string, time.Duration, error) {
			out, err := flagStep(ctx, sw, lcfg)
			return out, 0, err
		}},
	}...)
	first := ""
	if *shadowFor > 0 {
		first = fmt.Sprintf("a shadow of v2 for %s, ", *shadowFor)
	}
	say("steps: %sall at once, rollback, canary of %d phones watched for %s, SIGHUP, a feature flag", first, *canaries, *window)
	every := *duration / time.Duration(len(steps)+1)
	for i, s := range steps {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(started.Add(time.Duration(i+1) * every))):
		}
		s.start = time.Now()
		out, pause, err := s.run()
		s.end = time.Now()
		if err != nil {
			return fmt.Errorf("demo: %s: %w", s.name, err)
		}
		s.pause = pause
		say("%s: %s (took %s)", s.name, out, s.end.Sub(s.start).Round(time.Millisecond))
	}
	res := <-loaded
	if res.err != nil {
		return res.err
	}
	rep := res.rep

	fmt.Fprintln(stdout, "\n== report ==")
	if err := rep.print(stdout); err != nil {
		return err
	}
	for _, s := range steps {
		longest := time.Duration(0)
		for _, g := range rep.Gaps {
			if g.End.After(s.start) && g.End.Add(-g.Len).Before(s.end.Add(100*time.Millisecond)) {
				longest = max(longest, g.Len)
			}
		}
		line := fmt.Sprintf("longest pause in a stream: %s", longest.Round(time.Millisecond))
		if longest == 0 {
			line = "no stream paused longer than 3 frames"
		}
		if s.pause > 0 {
			line += ", a phone suspended at most " + s.pause.String()
		}
		fmt.Fprintf(stdout, "%-26s %s\n", s.name+":", line)
	}
	return rep.verdict()
}

// flagProbe is the number of the phone that the demo's flag step
// registers to show a STATUS line: above the load generator's.
const flagProbe = "99999"

// flagStep turns the hd-audio feature flag on through the admin API, as
// `phoneswitch ctl flags hd-audio on` does, and shows what the phones see:
// a STATUS line that ends with codec=hd, without a new version or a phone
// moved. It fails if the STATUS line does not show it.
func flagStep(ctx context.Context, sw switchProc, lcfg loadConfig) (string, error) {
	actx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	c, err := upgrade.DialAdmin(actx, sw.admin)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(actx, upgrade.AdminRequest{Op: "flags", Flag: phone.FlagHDAudio, Value: "on", Who: "demo"}, nil)
	if err != nil {
		return "", errors.New(oneLine(err))
	}
	var set strings.Builder
	if err := printFlags(&set, resp.Flags, upgrade.AdminRequest{}); err != nil {
		return "", err
	}
	p, err := connectPhone(actx, lcfg, flagProbe)
	if err != nil {
		return "", err
	}
	st, err := func() (string, error) {
		if err := p.send("STATUS"); err != nil {
			return "", err
		}
		return p.line()
	}()
	err = errors.Join(err, p.close())
	if err != nil {
		return "", err
	}
	if !strings.HasSuffix(st, " codec=hd") {
		return "", fmt.Errorf("hd-audio is on and a phone's STATUS does not show codec=hd: %q", st)
	}
	return fmt.Sprintf("%s; a phone's STATUS: %s", strings.TrimSpace(set.String()), st), nil
}

// switchProc is a `phoneswitch serve` process, and after SIGHUP its
// successor (not a child of ours: found through the PID file).
type switchProc struct {
	exe, admin, pidFile, addr, http, log string
	args                                 []string // more flags of serve
	env                                  []string // more environment of serve
	cmd                                  *exec.Cmd
	logFile                              *os.File
}

func (p *switchProc) start(ctx context.Context, version string, drain time.Duration) error {
	f, err := os.Create(p.log)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	p.logFile = f
	args := []string{"serve", "--listen", p.addr, "--admin", p.admin, "--plugins", filepath.Join(filepath.Dir(p.exe), "plugins"),
		"--version", version, "--pid-file", p.pidFile, "--http", p.http, "--drain-timeout", drain.String()}
	p.cmd = exec.Command(p.exe, append(args, p.args...)...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if p.env != nil {
		p.cmd.Env = append(os.Environ(), p.env...)
	}
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("demo: start the switch: %w", err)
	}
	return p.waitReady(ctx, p.cmd.Process.Pid)
}

// waitReady waits until the PID file names pid and /healthz says ready.
func (p *switchProc) waitReady(ctx context.Context, pid int) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if got, err := p.pid(); err == nil && got == pid && healthy(ctx, p.http) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("demo: switch (pid %d) not ready after 15s; see %s", pid, p.log)
}

func (p *switchProc) pid() (int, error) {
	b, err := os.ReadFile(p.pidFile)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// restart sends SIGHUP, waits for the new process to be ready and for the
// old one to exit, and says how many lines the new process took over.
func (p *switchProc) restart() (string, error) {
	old, err := p.pid()
	if err != nil {
		return "", err
	}
	if err := syscall.Kill(old, syscall.SIGHUP); err != nil {
		return "", err
	}
	start := time.Now()
	deadline := start.Add(15 * time.Second)
	for time.Now().Before(deadline) {
		pid, err := p.pid()
		if err != nil || pid == old || !healthy(context.Background(), p.http) {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		// The old process has nothing left to drain once its calls were
		// handed over: it exits at once.
		for !exited(old) && time.Since(start) < 5*time.Second {
			time.Sleep(10 * time.Millisecond)
		}
		if !exited(old) {
			return fmt.Sprintf("pid %d -> %d; calls in progress finish on %d", old, pid, old), nil
		}
		return fmt.Sprintf("pid %d -> %d; %s handed over live; %d exited after %s",
			old, pid, p.restored(pid), old, time.Since(start).Round(time.Millisecond)), nil
	}
	return "", fmt.Errorf("no new process after 15s; see %s", p.log)
}

// restored reads from the log how many lines and phones the process pid
// restored.
func (p *switchProc) restored(pid int) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return "the calls"
	}
	tag := "pid=" + strconv.Itoa(pid) + " "
	for _, l := range slices.Backward(strings.Split(string(b), "\n")) {
		if !strings.Contains(l, "exchange: lines restored") || !strings.Contains(l, tag) {
			continue
		}
		var lines, phones string
		for _, f := range strings.Fields(l) {
			if v, ok := strings.CutPrefix(f, "lines="); ok {
				lines = v
			}
			if v, ok := strings.CutPrefix(f, "phones="); ok {
				phones = v
			}
		}
		return fmt.Sprintf("%s lines (%s phones)", lines, phones)
	}
	return "the calls"
}

// exited reports whether the process pid has exited (a zombie has).
func exited(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) != nil
	}
	i := strings.LastIndexByte(string(b), ')')
	return i >= 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X')
}

// stop ends the serving process (SIGTERM) and waits for every process of
// the demo to exit.
func (p *switchProc) stop() error {
	var errs []error
	if pid, err := p.pid(); err == nil {
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for !exited(pid) && time.Now().Before(deadline) { // a zombie child of ours has exited
			time.Sleep(20 * time.Millisecond)
		}
	}
	if p.cmd != nil {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			errs = append(errs, err)
		}
		if err := p.cmd.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("demo: the first switch process: %w", err))
		}
	}
	if p.logFile != nil {
		errs = append(errs, p.logFile.Close())
	}
	return errors.Join(errs...)
}

func healthy(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	ok := resp.StatusCode == http.StatusOK
	return resp.Body.Close() == nil && ok
}

// freeAddr returns a loopback address with a free TCP port.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}
