package main

// `phoneswitch soak`: the switch under the soak's load while the chaos
// driver upgrades, rolls back, kills and hangs plugins, fails an UPGRADE,
// and replaces the binary; then a table, and a verdict. See
// doc/reliability.md.

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hotline-go/hotline/plugin"
)

// Tolerances of the end-versus-start comparison: a switch that has been
// through the soak may hold a few more goroutines and descriptors than a
// fresh one (a plugin process it keeps for a while, the HTTP connection of
// the measurement), not more.
const (
	goroutineTolerance = 10
	fdTolerance        = 10
	// A plugin process the switch runs costs it goroutines and descriptors
	// of its own (go-plugin's client, the event socket, the pipes); plugin
	// processes start when a version's first phone needs them and stop a
	// while after its last, so the comparison allows this much for each one
	// running at the end beyond those running at the start (measured here:
	// about 16 goroutines and 5 descriptors each).
	goroutinesPerPlugin = 20
	fdsPerPlugin        = 8
)

type soakConfig struct {
	duration      time.Duration
	seed          uint64
	phones, idle  int
	inProcess     bool
	plugins       string // the directory of phone-chaos
	pluginTimeout time.Duration
	callLength    time.Duration
	keep          bool
	without       map[opKind]bool
}

func soak(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg soakConfig
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&cfg.duration, "duration", 2*time.Minute, "how long the load and the chaos run")
	fs.Uint64Var(&cfg.seed, "seed", 0, "`N` the chaos schedule is drawn from (0: from the clock; printed either way)")
	fs.IntVar(&cfg.phones, "phones", 20, "`N` phones calling in pairs (even), plus 2 idle phones")
	fs.BoolVar(&cfg.inProcess, "in-process", false, "run the phone versions compiled into the switch (no plugin faults then)")
	fs.StringVar(&cfg.plugins, "plugins", "", "`DIR` holding the phone-chaos plugin (default: soak-plugins/ beside this binary; not plugins/, where serve and demo refuse a file SHA256SUMS does not list)")
	fs.DurationVar(&cfg.pluginTimeout, "plugin-timeout", 2*time.Second, "the switch's --plugin-timeout: how long a hung plugin holds its event")
	fs.DurationVar(&cfg.callLength, "call", 1500*time.Millisecond, "length of each call")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the working directory (the switch's log)")
	without := fs.String("without", "", "`KINDS` of operation not to run, comma-separated: all, rolling, canary, new-sessions, shadow, rollback, kill, hang, fail-upgrade, sighup, sighup-upgrade")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("soak: unexpected argument %q", fs.Arg(0))
	}
	cfg.without = map[opKind]bool{}
	for _, name := range strings.Split(*without, ",") {
		if name == "" {
			continue
		}
		k, ok := opNames[name]
		if !ok {
			return fmt.Errorf("soak: --without %q: not a kind of operation", name)
		}
		cfg.without[k] = true
	}
	if cfg.seed == 0 {
		cfg.seed = uint64(time.Now().UnixNano())
	}
	cfg.idle = 2
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	if cfg.plugins == "" {
		cfg.plugins = filepath.Join(filepath.Dir(exe), "soak-plugins")
	}
	res, err := runSoak(ctx, exe, cfg, stdout)
	if err != nil {
		return err
	}
	return res.verdict()
}

// soakResult is the table.
type soakResult struct {
	cfg                soakConfig
	ops                map[opKind]*opCount
	load               *soakStats
	peakRSS            int64 // kB
	goStart, goEnd     int
	fdStart, fdEnd     int
	plugStart, plugEnd int // plugin processes of the switch
	pidStart, pidEnd   int
	restarts           int
}

// runSoak runs the soak: the switch (exe serve) as a child process, the
// load and the chaos in this one. It prints the chaos operations as they
// run, then the table.
func runSoak(ctx context.Context, exe string, cfg soakConfig, stdout io.Writer) (res *soakResult, err error) {
	if cfg.phones < 2 || cfg.phones%2 != 0 {
		return nil, fmt.Errorf("soak: --phones %d: want an even number, at least 2", cfg.phones)
	}
	var mu sync.Mutex // stdout
	say := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(stdout, "soak: "+time.Now().UTC().Format("15:04:05.000 ")+format+"\n", a...)
	}
	dir, err := os.MkdirTemp("", "phoneswitch-soak-")
	if err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	defer func() {
		if !cfg.keep && err == nil && res.verdict() == nil {
			err = errors.Join(err, os.RemoveAll(dir))
		} else {
			say("working directory kept: %s", dir)
		}
	}()
	chaosDir := filepath.Join(dir, "chaos")
	if err := os.Mkdir(chaosDir, 0o755); err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	sw := &switchProc{
		exe: exe, admin: filepath.Join(dir, "admin.sock"), pidFile: filepath.Join(dir, "switch.pid"),
		addr: addr, http: httpAddr, log: filepath.Join(dir, "switch.log"),
		args: []string{"--plugin-timeout", cfg.pluginTimeout.String(), "--log-level", "info"},
		env:  []string{"PHONESWITCH_CHAOS_DIR=" + chaosDir},
	}
	mode := "in process (no plugin faults)"
	if !cfg.inProcess {
		pdir := filepath.Join(dir, "plugins")
		if err := installChaosPlugins(cfg.plugins, pdir); err != nil {
			return nil, err
		}
		sw.args = append(sw.args, "--in-process=false", "--plugins", pdir)
		mode = "in phone-chaos plugins (from " + cfg.plugins + ")"
	}
	again := fmt.Sprintf("phoneswitch soak --seed %d --duration %s --phones %d", cfg.seed, cfg.duration, cfg.phones)
	if len(cfg.without) > 0 {
		var names []string
		for name, k := range opNames {
			if cfg.without[k] {
				names = append(names, name)
			}
		}
		slices.Sort(names)
		again += " --without " + strings.Join(names, ",")
	}
	say("seed %d (again: %s)", cfg.seed, again)
	say("switch on %s, phone code %s, logs in %s", addr, mode, sw.log)
	if err := sw.start(ctx, "v1", 5*time.Second); err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, sw.stop()) }()

	res = &soakResult{cfg: cfg, ops: map[opKind]*opCount{}}
	for _, k := range opKinds {
		res.ops[k] = &opCount{}
	}
	if res.pidStart, res.goStart, res.fdStart, res.plugStart, err = measure(ctx, sw); err != nil {
		return nil, err
	}

	// The peak RSS of every switch process, sampled.
	sctx, stopSampling := context.WithCancel(ctx)
	var sampling sync.WaitGroup
	sampling.Go(func() {
		for sctx.Err() == nil {
			if pid, err := sw.pid(); err == nil {
				if kb := procKB(pid, "VmHWM:"); kb > res.peakRSS {
					res.peakRSS = kb
				}
			}
			_ = sleepCtx(sctx, 250*time.Millisecond)
		}
	})

	lcfg := soakLoadConfig{
		loadConfig: loadConfig{addr: addr, phones: cfg.phones, callLength: cfg.callLength, frameInterval: 20 * time.Millisecond,
			base: 20000, wait: cfg.pluginTimeout + 15*time.Second},
		idle: cfg.idle, checkEvery: 25, reconnect: 4,
	}
	say("load: %d phones calling in pairs, %s calls, a frame every %s each way, STATUS checked every %d frames; %d idle phones",
		cfg.phones, cfg.callLength, lcfg.frameInterval, lcfg.checkEvery, cfg.idle)
	started := time.Now()
	until := started.Add(cfg.duration)
	ready := make(chan struct{})
	loaded := make(chan *soakStats, 1)
	go func() { loaded <- runSoakLoad(ctx, lcfg, until, ready) }()
	<-ready

	c := &chaos{sw: sw, dir: chaosDir, victim: strconv.Itoa(lcfg.base), plugins: !cfg.inProcess,
		pluginTimeout: cfg.pluginTimeout, say: say, counts: res.ops}
	plan := newChaosPlan(cfg.seed, cfg.without)
	for {
		op := plan.next()
		// Leave the load a few seconds without chaos at its end.
		if time.Until(until) < op.delay+3*time.Second {
			break
		}
		if err := sleepCtx(ctx, op.delay); err != nil {
			break
		}
		c.run(ctx, op, cfg.without[op.kind])
	}
	res.load = <-loaded
	stopSampling()
	sampling.Wait()

	// The switch with no phone, as at the start.
	if err := waitIdle(ctx, sw); err != nil {
		say("%v", err)
	}
	if res.pidEnd, res.goEnd, res.fdEnd, res.plugEnd, err = measure(ctx, sw); err != nil {
		return nil, err
	}
	res.restarts = res.ops[opSighup].succeeded + res.ops[opSighupUpgrade].succeeded
	http.DefaultClient.CloseIdleConnections()
	mu.Lock()
	res.print(stdout)
	mu.Unlock()
	return res, nil
}

// installChaosPlugins puts phone-chaos into dir as phone-v1 and phone-v2,
// with their SHA256SUMS, for serve --plugins dir.
func installChaosPlugins(from, dir string) error {
	b, err := os.ReadFile(filepath.Join(from, "phone-chaos"))
	if err != nil {
		return fmt.Errorf("soak: the chaos plugin (go build -o bin/soak-plugins/ ./examples/phoneswitch/plugins/phone-chaos): %w", err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	var sums strings.Builder
	for _, name := range []string{"phone-v1", "phone-v2"} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o755); err != nil {
			return fmt.Errorf("soak: %w", err)
		}
		sum, err := fileSum(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		fmt.Fprintf(&sums, "%s  %s\n", sum, name)
	}
	return os.WriteFile(filepath.Join(dir, sumsFile), []byte(sums.String()), 0o644)
}

// measure returns the serving process, its goroutines, its descriptors and
// how many plugin processes it runs.
func measure(ctx context.Context, sw *switchProc) (pid, goroutines, fds, plugins int, err error) {
	if pid, err = sw.pid(); err != nil {
		return 0, 0, 0, 0, fmt.Errorf("soak: %w", err)
	}
	g, err := metricValue(ctx, sw.http, "go_goroutines")
	if err != nil {
		return 0, 0, 0, 0, err
	}
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return 0, 0, 0, 0, fmt.Errorf("soak: %w", err)
	}
	kids, err := pluginChildren(pid)
	if err != nil {
		return 0, 0, 0, 0, fmt.Errorf("soak: %w", err)
	}
	return pid, int(g), len(ents), len(kids), nil
}

// waitIdle waits until the switch has no phone and no connection.
func waitIdle(ctx context.Context, sw *switchProc) error {
	var phones, conns float64
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		var err1, err2 error
		phones, err1 = metricValue(ctx, sw.http, "phoneswitch_phones")
		conns, err2 = metricValue(ctx, sw.http, "phoneswitch_connections")
		if err1 == nil && err2 == nil && phones == 0 && conns == 0 {
			return nil
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("soak: the switch still has %v phones and %v connections 10s after the load ended", phones, conns)
}

// metricValue reads one unlabelled metric from the switch's /metrics.
func metricValue(ctx context.Context, addr, name string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("soak: metrics: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("soak: metrics: no %s", name)
}

// procKB reads a "<key> <n> kB" line of /proc/pid/status.
func procKB(pid int, key string) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// verdict is nil if every invariant held.
func (r *soakResult) verdict() error {
	if r == nil || r.load == nil {
		return errors.New("soak: did not run")
	}
	var bad []string
	l := r.load
	if l.Lost > 0 || l.Duplicated > 0 || l.OutOfOrder > 0 {
		bad = append(bad, fmt.Sprintf("frames lost %d, duplicated %d, out of order %d", l.Lost, l.Duplicated, l.OutOfOrder))
	}
	if l.Corrupted > 0 {
		bad = append(bad, fmt.Sprintf("%d STATUS answers disagree with the model", l.Corrupted))
	}
	if l.Failed > 0 {
		bad = append(bad, fmt.Sprintf("%d calls failed", l.Failed))
	}
	if l.Calls == 0 || l.Checked == 0 {
		bad = append(bad, "no call completed")
	}
	for _, k := range opKinds {
		c := r.ops[k]
		if c.attempted != c.succeeded+c.skipped {
			bad = append(bad, fmt.Sprintf("%s: %d of %d failed", k, c.attempted-c.succeeded-c.skipped, c.attempted))
		}
	}
	extra := max(0, r.plugEnd-r.plugStart)
	if r.goEnd > r.goStart+goroutineTolerance+extra*goroutinesPerPlugin {
		bad = append(bad, fmt.Sprintf("goroutines grew from %d to %d", r.goStart, r.goEnd))
	}
	if r.fdEnd > r.fdStart+fdTolerance+extra*fdsPerPlugin {
		bad = append(bad, fmt.Sprintf("descriptors grew from %d to %d", r.fdStart, r.fdEnd))
	}
	if len(bad) > 0 {
		return errors.New("soak: " + strings.Join(bad, "; "))
	}
	return nil
}

func (r *soakResult) print(w io.Writer) {
	fmt.Fprintf(w, "\n== soak: seed %d, %s, %d phones calling + %d idle ==\n", r.cfg.seed, r.cfg.duration, r.cfg.phones, r.cfg.idle)
	fmt.Fprintf(w, "| operation | attempted | succeeded | skipped | not run (--without) |\n| --- | ---: | ---: | ---: | ---: |\n")
	for _, k := range opKinds {
		c := r.ops[k]
		fmt.Fprintf(w, "| %s | %d | %d | %d | %d |\n", k, c.attempted, c.succeeded, c.skipped, c.excluded)
	}
	l := r.load
	fmt.Fprintf(w, "\n| invariant | value |\n| --- | ---: |\n")
	rows := []struct {
		k string
		v any
	}{
		{"calls completed", l.Calls},
		{"calls failed", l.Failed},
		{"frames sent", l.Sent},
		{"frames lost", l.Lost},
		{"frames duplicated", l.Duplicated},
		{"frames out of order", l.OutOfOrder},
		{"STATUS answers checked against the model", l.Checked},
		{"data corrupted (answers that disagree)", l.Corrupted},
		{"peak RSS of a switch process", fmt.Sprintf("%.1f MiB", float64(r.peakRSS)/1024)},
		{"switch processes (binary restarts)", fmt.Sprintf("pid %d -> %d (%d restarts)", r.pidStart, r.pidEnd, r.restarts)},
		{"plugin processes of the switch, start -> end", fmt.Sprintf("%d -> %d", r.plugStart, r.plugEnd)},
		{fmt.Sprintf("goroutines, start -> end (tolerance +%d, +%d a plugin process more)", goroutineTolerance, goroutinesPerPlugin), fmt.Sprintf("%d -> %d", r.goStart, r.goEnd)},
		{fmt.Sprintf("file descriptors, start -> end (tolerance +%d, +%d a plugin process more)", fdTolerance, fdsPerPlugin), fmt.Sprintf("%d -> %d", r.fdStart, r.fdEnd)},
	}
	for _, row := range rows {
		fmt.Fprintf(w, "| %s | %v |\n", row.k, row.v)
	}
	for _, k := range opKinds {
		for _, f := range r.ops[k].failures {
			fmt.Fprintf(w, "failure: %s\n", f)
		}
	}
	for _, e := range l.Errors {
		fmt.Fprintf(w, "load: %s\n", e)
	}
	if err := r.verdict(); err != nil {
		fmt.Fprintf(w, "\nFAIL: %v\n", err)
	} else {
		fmt.Fprintf(w, "\nPASS\n")
	}
}

// sumsFile is the checksum file serve --plugins reads (sha256sum format).
const sumsFile = "SHA256SUMS"

// fileSum returns the SHA-256 of a file in hex, as sha256sum writes it.
func fileSum(path string) (string, error) {
	sum, err := plugin.FileChecksum(path)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(sum), nil
}
