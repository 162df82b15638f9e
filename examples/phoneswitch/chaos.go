package main

// The soak's chaos driver: a schedule of operations drawn from a seed
// (the same seed gives the same schedule), and each operation run
// against the switch, with what it must leave behind checked.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hotline-go/hotline/examples/phoneswitch/phone"
	"github.com/hotline-go/hotline/upgrade"
)

// opKind is a kind of chaos operation; its string is its row in the
// soak's table.
type opKind string

const (
	opUpgradeAll         opKind = "upgrade, all at once"
	opUpgradeRolling     opKind = "upgrade, rolling"
	opUpgradeCanary      opKind = "upgrade, canary"
	opUpgradeNewSessions opKind = "upgrade, new sessions"
	opUpgradeShadow      opKind = "upgrade, shadow"
	opRollback           opKind = "rollback"
	opKillPlugin         opKind = "SIGKILL a plugin"
	opHang               opKind = "plugin hangs past deadline"
	opFailUpgrade        opKind = "UPGRADE fails for one phone"
	opSighup             opKind = "SIGHUP"
	opSighupUpgrade      opKind = "SIGHUP during an upgrade"
)

// opKinds are every kind, in the table's order.
var opKinds = []opKind{
	opUpgradeAll, opUpgradeRolling, opUpgradeCanary, opUpgradeNewSessions, opUpgradeShadow,
	opRollback, opKillPlugin, opHang, opFailUpgrade, opSighup, opSighupUpgrade,
}

// opNames are the kinds' names for soak --without.
var opNames = map[string]opKind{
	"all": opUpgradeAll, "rolling": opUpgradeRolling, "canary": opUpgradeCanary,
	"new-sessions": opUpgradeNewSessions, "shadow": opUpgradeShadow, "rollback": opRollback,
	"kill": opKillPlugin, "hang": opHang, "fail-upgrade": opFailUpgrade,
	"sighup": opSighup, "sighup-upgrade": opSighupUpgrade,
}

// chaosOp is one planned operation.
type chaosOp struct {
	n     int
	kind  opKind
	delay time.Duration        // after the previous operation ended
	spec  upgrade.StrategySpec // the upgrades' strategy
	pick  int                  // which plugin process (SIGKILL)
	hup   time.Duration        // SIGHUP during an upgrade: this long after it starts
}

func (op chaosOp) String() string {
	s := fmt.Sprintf("#%d %s", op.n, op.kind)
	switch op.kind {
	case opUpgradeAll, opUpgradeRolling, opUpgradeCanary, opUpgradeNewSessions, opUpgradeShadow, opSighupUpgrade, opFailUpgrade:
		s += " (" + specString(op.spec)
		if op.kind == opSighupUpgrade {
			s += fmt.Sprintf(", SIGHUP after %s", op.hup)
		}
		s += ")"
	case opKillPlugin:
		s += fmt.Sprintf(" (process #%d)", op.pick)
	}
	return s
}

func specString(s upgrade.StrategySpec) string {
	out := "--strategy " + s.Name
	if s.Batch > 0 {
		out += " --batch " + strconv.Itoa(s.Batch)
	}
	if s.Canary > 0 {
		out += " --canary " + strconv.Itoa(s.Canary)
	}
	if s.Window != "" {
		out += " --window " + s.Window
	}
	if s.Share > 0 {
		out += fmt.Sprintf(" --share %g", s.Share)
	}
	return out
}

// chaosPlan draws the schedule: rounds, each every kind once in an order
// drawn from the seed, so that every kind runs in a soak as long as one
// round; the parameters of each operation are drawn too.
type chaosPlan struct {
	rng     *rand.Rand
	round   []opKind
	n       int
	without map[opKind]bool
}

// newChaosPlan returns the plan of seed. An operation of a kind in
// without is drawn as the others are, and not run: the schedule of the
// others is the same with or without it.
func newChaosPlan(seed uint64, without map[opKind]bool) *chaosPlan {
	return &chaosPlan{rng: rand.New(rand.NewPCG(seed, seed^0x5eed5eed5eed5eed)), without: without}
}

func (p *chaosPlan) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(p.rng.Int64N(int64(hi-lo)+1)).Round(time.Millisecond)
}

func (p *chaosPlan) next() chaosOp {
	if len(p.round) == 0 {
		p.round = slices.Clone(opKinds)
		p.rng.Shuffle(len(p.round), func(i, j int) { p.round[i], p.round[j] = p.round[j], p.round[i] })
	}
	p.n++
	op := chaosOp{n: p.n, kind: p.round[0], delay: p.between(200*time.Millisecond, 1500*time.Millisecond)}
	p.round = p.round[1:]
	switch op.kind {
	case opUpgradeAll, opFailUpgrade:
		op.spec = upgrade.StrategySpec{Name: "all"}
	case opUpgradeRolling:
		op.spec = upgrade.StrategySpec{Name: "rolling", Batch: 1 + p.rng.IntN(5), Window: p.between(0, 50*time.Millisecond).String()}
	case opUpgradeCanary:
		op.spec = upgrade.StrategySpec{Name: "canary", Canary: 1 + p.rng.IntN(3), Window: p.between(300*time.Millisecond, 1500*time.Millisecond).String()}
	case opUpgradeNewSessions:
		op.spec = upgrade.StrategySpec{Name: "new-sessions", Share: float64(25 * (1 + p.rng.IntN(4)))}
	case opUpgradeShadow:
		op.spec = upgrade.StrategySpec{Name: "shadow", Window: p.between(300*time.Millisecond, 1500*time.Millisecond).String()}
	case opKillPlugin:
		op.pick = p.rng.IntN(1 << 16)
	case opSighupUpgrade:
		if p.rng.IntN(2) == 0 {
			op.spec = upgrade.StrategySpec{Name: "rolling", Batch: 1, Window: "20ms"}
		} else {
			op.spec = upgrade.StrategySpec{Name: "canary", Canary: 2, Window: "1s"}
		}
		op.hup = p.between(10*time.Millisecond, 400*time.Millisecond)
	}
	return op
}

// opCount is a row of the table.
type opCount struct {
	attempted, succeeded, skipped int
	excluded                      int // drawn, not run (--without)
	failures                      []string
}

// chaos runs operations against one switch.
type chaos struct {
	sw            *switchProc
	dir           string // the trigger files of phone-chaos
	victim        string // the phone whose UPGRADE fails (an idle phone)
	plugins       bool   // the phone code runs in plugin processes
	pluginTimeout time.Duration
	say           func(format string, a ...any)
	counts        map[opKind]*opCount
}

// errSkipped is an operation that does not apply to this switch.
var errSkipped = errors.New("skipped")

func (c *chaos) run(ctx context.Context, op chaosOp, without bool) {
	cnt := c.counts[op.kind]
	if without {
		cnt.excluded++
		c.say("%s: not run (--without)", op)
		return
	}
	cnt.attempted++
	start := time.Now()
	out, err := c.do(ctx, op)
	took := time.Since(start).Round(time.Millisecond)
	switch {
	case errors.Is(err, errSkipped):
		cnt.skipped++
		c.say("%s: skipped: %v (%s)", op, err, took)
	case err != nil:
		if len(cnt.failures) < 3 {
			cnt.failures = append(cnt.failures, fmt.Sprintf("%s: %v", op, err))
		}
		c.say("%s: FAILED: %v (%s)", op, err, took)
	default:
		cnt.succeeded++
		c.say("%s: ok: %s (%s)", op, out, took)
	}
}

func (c *chaos) do(ctx context.Context, op chaosOp) (string, error) {
	switch op.kind {
	case opUpgradeAll, opUpgradeRolling, opUpgradeCanary, opUpgradeNewSessions, opUpgradeShadow:
		return c.upgrade(ctx, op.spec)
	case opRollback:
		resp, err := c.admin(ctx, upgrade.AdminRequest{Op: "rollback"})
		if errors.Is(err, upgrade.ErrNothingToRollBack) || err != nil && strings.Contains(err.Error(), "no earlier version") {
			return "", fmt.Errorf("%w: %v", errSkipped, err)
		}
		if err != nil {
			return "", err
		}
		return reportLine(resp.Report), c.serving(ctx)
	case opKillPlugin:
		return c.killPlugin(ctx, op.pick)
	case opHang:
		return c.hang(ctx)
	case opFailUpgrade:
		return c.failUpgrade(ctx)
	case opSighup:
		return c.sighup(ctx)
	case opSighupUpgrade:
		return c.sighupDuringUpgrade(ctx, op)
	}
	return "", fmt.Errorf("unknown operation %q", op.kind)
}

// admin sends one request to the switch's admin API.
func (c *chaos) admin(ctx context.Context, req upgrade.AdminRequest) (*upgrade.AdminResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	ac, err := upgrade.DialAdmin(ctx, c.sw.admin)
	if err != nil {
		return nil, err
	}
	req.Machine, req.Who = phone.Name, "soak"
	if req.Op == "status" {
		req.Machine = ""
	}
	resp, err := ac.Do(ctx, req, nil)
	return &resp, err
}

// status returns the version new phones start on and the phones on each
// version.
func (c *chaos) status(ctx context.Context) (string, map[string]int, error) {
	resp, err := c.admin(ctx, upgrade.AdminRequest{Op: "status"})
	if err != nil {
		return "", nil, err
	}
	for _, ms := range resp.Status {
		if ms.Machine == phone.Name {
			on := map[string]int{}
			for _, v := range ms.Versions {
				on[v.Version] = v.Machines
			}
			return ms.Current, on, nil
		}
	}
	return "", nil, errors.New("status: no phone machine")
}

// serving checks that the switch answers its admin API and /healthz.
func (c *chaos) serving(ctx context.Context) error {
	if _, _, err := c.status(ctx); err != nil {
		return fmt.Errorf("the switch does not answer: %w", err)
	}
	if !healthy(ctx, c.sw.http) {
		return errors.New("the switch is not healthy")
	}
	return nil
}

func other(v string) string {
	if v == "v1" {
		return "v2"
	}
	return "v1"
}

func (c *chaos) upgrade(ctx context.Context, spec upgrade.StrategySpec) (string, error) {
	var prefix string
	if spec.Name == "shadow" {
		// A shadow runs a version newer than the live one: from v1.
		out, err := c.allOn(ctx, "v1")
		if err != nil {
			return "", err
		}
		prefix = out
	}
	from, _, err := c.status(ctx)
	if err != nil {
		return "", err
	}
	to := other(from)
	resp, err := c.admin(ctx, upgrade.AdminRequest{Op: "upgrade", To: to, Strategy: &spec})
	if err != nil && strings.Contains(err.Error(), "not supported") {
		return "", fmt.Errorf("%w: %s -> %s: %v", errSkipped, from, to, oneLine(err))
	}
	if err != nil {
		return "", fmt.Errorf("%s%s -> %s: %v", prefix, from, to, oneLine(err))
	}
	now, on, err := c.status(ctx)
	if err != nil {
		return "", err
	}
	// Where new phones start now: shadow moves nothing, new sessions
	// move the current version only at a share of 100 %.
	want := to
	if spec.Name == "shadow" || spec.Name == "new-sessions" && spec.Share < 100 {
		want = from
	}
	if now != want {
		return "", fmt.Errorf("%s -> %s (%s) succeeded, and new phones start on %s, not %s", from, to, spec.Name, now, want)
	}
	out := prefix + reportLine(resp.Report)
	if r := resp.Report; r != nil && r.Shadow != nil {
		out += fmt.Sprintf(" shadow=%+v", *r.Shadow)
		if len(out) > 400 {
			out = out[:400] + "…"
		}
	}
	if spec.Name == "new-sessions" {
		out += fmt.Sprintf(" (phones now %v)", on)
	}
	return out, nil
}

// allOn moves every phone to version v (all at once) if any runs another
// or new phones start on another: the operations that need one version
// everywhere begin with it. It says what it did.
func (c *chaos) allOn(ctx context.Context, v string) (string, error) {
	now, on, err := c.status(ctx)
	if err != nil {
		return "", err
	}
	if now == v && on[other(v)] == 0 {
		return "", nil
	}
	_, err = c.admin(ctx, upgrade.AdminRequest{Op: "upgrade", To: v, Strategy: &upgrade.StrategySpec{Name: "all"}})
	if err != nil {
		return "", fmt.Errorf("first, every phone to %s: %v", v, oneLine(err))
	}
	return fmt.Sprintf("first every phone to %s (was %s %v); ", v, now, on), nil
}

// failUpgrade makes the victim's UPGRADE fail in an all-at-once rollout:
// the rollout must fail naming it, every phone must be back on the old
// version, and the switch must serve on.
func (c *chaos) failUpgrade(ctx context.Context) (string, error) {
	if !c.plugins {
		return "", fmt.Errorf("%w: the fault is in the phone-chaos plugin (--in-process)", errSkipped)
	}
	cur, _, err := c.status(ctx)
	if err != nil {
		return "", err
	}
	prefix, err := c.allOn(ctx, cur) // after new sessions, phones on both
	if err != nil {
		return "", err
	}
	from, to := cur, other(cur)
	trigger := filepath.Join(c.dir, "fail-upgrade")
	if err := os.WriteFile(trigger, []byte(c.victim+"\n"), 0o644); err != nil {
		return "", err
	}
	defer os.Remove(trigger)
	_, uerr := c.admin(ctx, upgrade.AdminRequest{Op: "upgrade", To: to, Strategy: &upgrade.StrategySpec{Name: "all"}})
	if uerr == nil {
		return "", fmt.Errorf("%s -> %s succeeded although phone %s's UPGRADE fails", from, to, c.victim)
	}
	if !strings.Contains(uerr.Error(), c.victim) {
		return "", fmt.Errorf("the error does not name phone %s: %v", c.victim, oneLine(uerr))
	}
	now, on, err := c.status(ctx)
	if err != nil {
		return "", err
	}
	if now != from || on[to] != 0 {
		return "", fmt.Errorf("after the failed rollout: new phones start on %s, %d phones on %s (want %s, 0)", now, on[to], to, from)
	}
	return fmt.Sprintf("%s%s -> %s refused and undone (%d phones on %s): %s", prefix, from, to, on[from], from, oneLine(uerr)), c.serving(ctx)
}

// children returns the phone plugin processes of the switch, by pid.
func (c *chaos) children() ([]int, error) {
	sw, err := c.sw.pid()
	if err != nil {
		return nil, err
	}
	return pluginChildren(sw)
}

// pluginChildren returns the phone plugin processes whose parent is sw.
func pluginChildren(sw int) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, comm, ok := procStat(pid)
		if ok && ppid == sw && (comm == "phone-v1" || comm == "phone-v2") {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids, nil
}

// procStat reads a process's parent and name from /proc.
func procStat(pid int) (ppid int, comm string, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, "", false
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return 0, "", false
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 2 || f[0] == "Z" {
		return 0, "", false
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, s[open+1 : end], err == nil
}

func (c *chaos) killPlugin(ctx context.Context, pick int) (string, error) {
	if !c.plugins {
		return "", fmt.Errorf("%w: no plugin process (--in-process)", errSkipped)
	}
	pids, err := c.children()
	if err != nil {
		return "", err
	}
	if len(pids) == 0 {
		return "", fmt.Errorf("%w: no plugin process running", errSkipped)
	}
	pid := pids[pick%len(pids)]
	_, comm, _ := procStat(pid)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return "", fmt.Errorf("kill %d: %w", pid, err)
	}
	return fmt.Sprintf("killed %s (pid %d) of %d", comm, pid, len(pids)), c.serving(ctx)
}

// hang makes the next event a plugin handles hang: the host must kill
// that process at its deadline, and the event go on in another.
func (c *chaos) hang(ctx context.Context) (string, error) {
	if !c.plugins {
		return "", fmt.Errorf("%w: the fault is in the phone-chaos plugin (--in-process)", errSkipped)
	}
	trigger := filepath.Join(c.dir, "hang")
	if err := os.WriteFile(trigger, nil, 0o644); err != nil {
		return "", err
	}
	claimed := ""
	for deadline := time.Now().Add(10 * time.Second); claimed == "" && time.Now().Before(deadline); {
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			return "", err
		}
		m, err := filepath.Glob(filepath.Join(c.dir, "hang.claimed.*"))
		if err != nil {
			return "", err
		}
		if len(m) > 0 {
			claimed = m[0]
		}
	}
	if claimed == "" {
		return "", errors.Join(errors.New("no plugin handled an event within 10s"), os.Remove(trigger))
	}
	defer os.Remove(claimed)
	pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Ext(claimed), "."))
	if err != nil {
		return "", fmt.Errorf("claimed file %s: %w", claimed, err)
	}
	hung := time.Now()
	limit := c.pluginTimeout + 10*time.Second
	for !exited(pid) {
		if time.Since(hung) > limit {
			return "", fmt.Errorf("plugin pid %d hung and still alive after %s", pid, limit)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("plugin pid %d hung, killed after %s", pid, time.Since(hung).Round(time.Millisecond)), c.serving(ctx)
}

func (c *chaos) sighup(ctx context.Context) (string, error) {
	old, err := c.sw.pid()
	if err != nil {
		return "", err
	}
	out, err := c.sw.restart()
	if err != nil {
		return "", err
	}
	for deadline := time.Now().Add(10 * time.Second); !exited(old); {
		if time.Now().After(deadline) {
			return "", fmt.Errorf("the old process %d still runs 15s after SIGHUP: %s", old, out)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return "", err
		}
	}
	return out, c.serving(ctx)
}

// sighupDuringUpgrade starts an upgrade and sends SIGHUP while it runs.
// Either may fail; the switch must serve on, on one version or the other,
// and the load must see nothing lost.
func (c *chaos) sighupDuringUpgrade(ctx context.Context, op chaosOp) (string, error) {
	from, _, err := c.status(ctx)
	if err != nil {
		return "", err
	}
	to := other(from)
	type result struct {
		resp *upgrade.AdminResponse
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := c.admin(ctx, upgrade.AdminRequest{Op: "upgrade", To: to, Strategy: &op.spec})
		done <- result{resp, err}
	}()
	if err := sleepCtx(ctx, op.hup); err != nil {
		<-done
		return "", err
	}
	hup, herr := c.sighup(ctx)
	res := <-done
	up := "upgrade ok: " + reportLine(nil)
	if res.err != nil {
		up = "upgrade failed: " + oneLine(res.err)
	} else {
		up = "upgrade ok: " + reportLine(res.resp.Report)
	}
	if herr != nil {
		return "", fmt.Errorf("%s; SIGHUP: %w", up, herr)
	}
	now, on, err := c.status(ctx)
	if err != nil {
		return "", fmt.Errorf("%s; %s; then: %w", up, hup, err)
	}
	return fmt.Sprintf("%s; %s; now on %s %v", up, hup, now, on), nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
