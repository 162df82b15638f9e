package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hotline-go/hotline/examples/phoneswitch/phone"
	"github.com/hotline-go/hotline/examples/phoneswitch/protocol"
	"github.com/hotline-go/hotline/flags"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// build compiles this command into a temporary directory, with the go
// build flags given.
func build(t *testing.T, flags ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	exe := filepath.Join(t.TempDir(), "phoneswitch")
	args := append(append([]string{"build", "-o", exe}, flags...), ".")
	out, err := exec.Command("go", args...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return exe
}

// replaceBinary puts a copy of src at dst with a rename, as an operator
// replaces a running binary.
func replaceBinary(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	tmp := dst + ".new"
	require.NoError(t, os.WriteFile(tmp, b, 0o755))
	require.NoError(t, os.Rename(tmp, dst))
}

func ctlRun(t *testing.T, exe, admin string, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(exe, append([]string{"ctl", "--admin", admin}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return strings.TrimSpace(stderr.String()), err
	}
	return strings.TrimSpace(stdout.String()), nil
}

func statusOf(t *testing.T, p *loadPhone) protocol.StatusLine {
	t.Helper()
	require.NoError(t, p.send("STATUS"))
	line, err := p.line()
	require.NoError(t, err)
	r, err := protocol.ParseReply(line)
	require.NoError(t, err)
	st, ok := r.(protocol.StatusLine)
	require.True(t, ok, line)
	return st
}

// TestProcesses builds the command once and runs it as real processes.
func TestProcesses(t *testing.T) {
	exe := build(t)
	faulty := build(t, "-ldflags", "-X main.handoffFault=restore")
	t.Run("call survives everything", func(t *testing.T) { testCallSurvivesEverything(t, exe, faulty) })
	t.Run("demo", func(t *testing.T) { testDemo(t, exe) })
}

// A call streams audio both ways through an upgrade, a rollback, another
// upgrade and a binary restart, run by real processes; no frame is lost,
// duplicated or reordered, and v2 shows the true connect time.
func testCallSurvivesEverything(t *testing.T, built, faulty string) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "phoneswitch") // replaced in place, as in production
	replaceBinary(t, built, exe)
	ctx := context.Background()
	addr, err := freeAddr()
	require.NoError(t, err)
	httpAddr, err := freeAddr()
	require.NoError(t, err)
	sw := &switchProc{exe: exe, admin: filepath.Join(dir, "admin.sock"), pidFile: filepath.Join(dir, "pid"),
		addr: addr, http: httpAddr, log: filepath.Join(dir, "switch.log")}
	require.NoError(t, sw.start(ctx, "v1", 10*time.Second))
	t.Cleanup(func() {
		require.NoError(t, sw.stop())
		if t.Failed() {
			b, err := os.ReadFile(sw.log)
			require.NoError(t, err)
			t.Logf("switch log:\n%s", b)
		}
	})
	fi, err := os.Stat(sw.admin)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	cfg := loadConfig{addr: addr, frameInterval: 2 * time.Millisecond, callLength: time.Minute}
	a, err := connectPhone(ctx, cfg, "1000")
	require.NoError(t, err)
	defer func() { require.NoError(t, a.close()) }()
	b, err := connectPhone(ctx, cfg, "2000")
	require.NoError(t, err)
	defer func() { require.NoError(t, b.close()) }()

	before, after := dial(t, a, b)

	require.True(t, healthy(ctx, httpAddr))
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	require.NoError(t, err)
	metrics, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Contains(t, string(metrics), "\nphoneswitch_phones 2\n")
	require.Contains(t, string(metrics), "\nphoneswitch_calls_total 1\n")

	st := statusOf(t, a)
	require.Equal(t, "v1", st.Version)
	require.Equal(t, "in_progress", st.State)
	_, hasSince := st.Get("since")
	require.False(t, hasSince, "v1 records the connect time but does not show it")

	s := startStreams(ctx, t, cfg, a, b)
	s.flowing(20)

	out, err := ctlRun(t, exe, sw.admin, "upgrade", "v2", "--strategy", "all")
	require.NoError(t, err, out)
	require.Contains(t, out, "progress: resumed 2/2\n")
	require.Contains(t, out, "from=v1 to=v2 phones=2 ")
	require.Contains(t, out, "strategy=all-at-once result=ok")
	st = statusOf(t, a)
	require.Equal(t, "v2", st.Version)
	since, ok := st.Get("since")
	require.True(t, ok, st.String())
	ms, err := strconv.ParseInt(since, 10, 64)
	require.NoError(t, err)
	require.True(t, ms >= before && ms <= after, "since=%d, connected between %d and %d", ms, before, after)
	s.flowing(20)

	out, err = ctlRun(t, exe, sw.admin, "rollback")
	require.NoError(t, err, out)
	require.Contains(t, out, "from=v2 to=v1 phones=2 ")
	require.Equal(t, "v1", statusOf(t, b).Version)
	s.flowing(20)

	// A shadow (dark launch) moves no phone: v2 only sees their events.
	out, err = ctlRun(t, exe, sw.admin, "upgrade", "v2", "--strategy", "shadow")
	require.NoError(t, err, out)
	require.Contains(t, out, "strategy=shadow result=ok")
	require.Equal(t, "v1", statusOf(t, b).Version)
	// Feature flags: set while the call goes on, read back, a bad value refused.
	out, err = ctlRun(t, exe, sw.admin, "flags")
	require.NoError(t, err, out)
	require.Equal(t, "no feature flags are set", out)
	out, err = ctlRun(t, exe, sw.admin, "flags", "hd-audio", "25%")
	require.NoError(t, err, out)
	require.Regexp(t, `^flag=hd-audio value=25% old=off who=ctl\S* when=\S+$`, out)
	out, err = ctlRun(t, exe, sw.admin, "flags", "hd-audio")
	require.NoError(t, err, out)
	require.True(t, strings.HasPrefix(out, "flag=hd-audio value=25% "), out)
	// The phones read it: STATUS shows codec=hd for those in its 25%
	// (a stable hash of flag and number, as any Set computes it).
	at25 := flags.New(flags.WithLogger(slog.New(slog.DiscardHandler)))
	_, err = at25.Set(phone.FlagHDAudio, flags.Percent(25), "test")
	require.NoError(t, err)
	for _, p := range []*loadPhone{a, b} {
		st := statusOf(t, p)
		codec, _ := st.Get("codec")
		require.Equal(t, at25.Enabled(phone.FlagHDAudio, p.number), codec == "hd", st.String())
	}
	out, err = ctlRun(t, exe, sw.admin, "flags", "hd-audio", "on")
	require.NoError(t, err, out)
	for _, p := range []*loadPhone{a, b} {
		st := statusOf(t, p)
		codec, _ := st.Get("codec")
		require.Equal(t, "hd", codec, st.String())
	}
	out, err = ctlRun(t, exe, sw.admin, "flags", "hd-audio", "loud")
	require.Error(t, err)
	require.Contains(t, out, "loud")
	require.NotContains(t, strings.TrimSuffix(out, "\n"), "\n")
	s.flowing(10)
	out, err = ctlRun(t, exe, sw.admin, "upgrade", "v3")
	require.Error(t, err)
	require.Contains(t, out, "unknown version")
	require.NotContains(t, out, "\n")
	// A canary of one phone, watched for 300ms, then the other.
	out, err = ctlRun(t, exe, sw.admin, "upgrade", "v2", "--strategy", "canary", "--canary", "1", "--window", "300ms")
	require.NoError(t, err, out)
	require.Contains(t, out, "progress: canaries 1/1\n")
	require.Contains(t, out, "from=v1 to=v2 phones=2 ")
	require.Contains(t, out, "canaries=1 verdict=promoted")
	st = statusOf(t, b)
	require.Equal(t, since, func() string { v, _ := st.Get("since"); return v }(), "since survives a downgrade and an upgrade")
	s.flowing(20)

	// Two binary restarts in a row: each new process takes the call over,
	// its connections and both machines, mid-stream; the old one has
	// nothing left to drain and exits at once.
	for i := range 2 {
		old, err := sw.pid()
		require.NoError(t, err)
		restarted, err := sw.restart()
		require.NoError(t, err)
		t.Log(restarted)
		require.Contains(t, restarted, "2 lines (2 phones) handed over live")
		require.True(t, exited(old), "restart %d: the old process drains nothing", i+1)
		s.flowing(20)
		for _, p := range []*loadPhone{a, b} {
			st := statusOf(t, p)
			require.Equal(t, "v2", st.Version, st.String())
			require.Equal(t, "in_progress", st.State, st.String())
			got, _ := st.Get("since")
			require.Equal(t, since, got, "since survives a binary restart")
		}
	}

	// A new binary that takes the calls and then fails before it is ready:
	// the old process resumes every line and serves on.
	old, err := sw.pid()
	require.NoError(t, err)
	replaceBinary(t, faulty, exe)
	require.NoError(t, syscall.Kill(old, syscall.SIGHUP))
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(sw.log)
		return err == nil && strings.Contains(string(b), "machines and connections resumed here")
	}, 15*time.Second, 10*time.Millisecond)
	replaceBinary(t, built, exe)
	s.flowing(20)
	pid, err := sw.pid()
	require.NoError(t, err)
	require.Equal(t, old, pid, "the old process serves on")
	require.True(t, healthy(ctx, httpAddr))
	for _, p := range []*loadPhone{a, b} {
		st := statusOf(t, p)
		require.Equal(t, "in_progress", st.State, st.String())
		got, _ := st.Get("since")
		require.Equal(t, since, got)
	}
	restarted, err := sw.restart()
	require.NoError(t, err)
	require.Contains(t, restarted, "2 lines (2 phones) handed over live")
	s.flowing(20)

	// The new process serves new lines, and routes between them and the
	// lines it took over.
	c, err := connectPhone(ctx, cfg, "3000")
	require.NoError(t, err)
	require.Equal(t, "off", statusOf(t, c).State)
	require.NoError(t, c.send("OFFHOOK"))
	require.NoError(t, c.expect("DIALTONE"))
	for _, l := range []string{"KEY 1", "KEY 0", "KEY 0", "KEY 0", "KEY #"} {
		require.NoError(t, c.send(l))
	}
	require.NoError(t, c.expect("BUSY busy"))
	require.NoError(t, c.close())
	out, err = ctlRun(t, exe, sw.admin, "status")
	require.NoError(t, err, out)
	require.Contains(t, out, "version=v2 ") // the new process asked the old one
	require.Contains(t, out, " v2=2")       // a and b, restored under the release handler

	sent := s.stop()
	for _, p := range []*loadPhone{a, b} {
		p.mu.Lock()
		require.Zero(t, p.ooo, "phone %s: frames out of order", p.number)
		p.mu.Unlock()
	}
	require.NoError(t, a.send("ONHOOK"))
	require.NoError(t, a.expect("ONHOOK"))
	require.NoError(t, b.expect("HANGUP"))
	t.Logf("frames: %d and %d, none lost or reordered", sent[0], sent[1])
}

func testDemo(t *testing.T, exe string, flags ...string) {
	var out bytes.Buffer
	cmd := exec.Command(exe, append([]string{"demo", "--phones", "4", "--duration", "5s", "--call", "800ms", "--canary", "2", "--window", "300ms"}, flags...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Run(), out.String())
	if slices.Contains(flags, "--in-process=false") {
		require.Contains(t, out.String(), "phone code runs in the phone-v1 and phone-v2 plugins")
	}
	for _, want := range []string{"frames lost:         0", "calls failed:        0", "versions seen:       v1", "v2", "binary restart (SIGHUP):", "handed over live",
		"upgrade v2 (canary): from=v1 to=v2 phones=", "canaries=2 verdict=promoted",
		"shadow v2 (dark launch): from=v1 to=v2 shadowed=", " reloaded=", " started=", "strategy=shadow result=ok", " mirrored="} {
		require.Contains(t, out.String(), want)
	}
}

func TestCtlUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"ctl"}, "ctl: --admin SOCKET is required"},
		{[]string{"ctl", "--admin", "x"}, "ctl: want status, upgrade VERSION, rollback or flags"},
		{[]string{"ctl", "--admin", "x", "upgrade"}, "ctl upgrade: want a VERSION"},
		{[]string{"ctl", "--admin", "x", "upgrade", "v2", "--strategy", "wild"}, `ctl upgrade: unknown strategy "wild"`},
		{[]string{"ctl", "--admin", "x", "upgrade", "v2", "--batch", "2"}, "ctl upgrade: --batch is for --strategy rolling, not all"},
		{[]string{"ctl", "--admin", "x", "upgrade", "v2", "--strategy", "rolling", "--canary", "2"}, "ctl upgrade: --canary is for --strategy canary, not rolling"},
		{[]string{"ctl", "--admin", "x", "upgrade", "v2", "--window", "1s"}, "ctl upgrade: --window is for --strategy canary, rolling or shadow, not all"},
		{[]string{"ctl", "--admin", "x", "upgrade", "v2", "--share", "5"}, "ctl upgrade: --share is for --strategy new-sessions, not all"},
		{[]string{"ctl", "--admin", "x", "upgrade", "v2", "--strategy", "new-sessions", "--share", "101"}, "ctl upgrade: --share 101: want a percentage from 0 to 100"},
		{[]string{"ctl", "--admin", "x", "upgrade", "v2", "--strategy", "canary", "--canary", "-1"}, "cannot be negative"},
		{[]string{"ctl", "--admin", "x", "upgrade", "v2", "v3"}, `ctl upgrade: unexpected argument "v3"`},
		{[]string{"ctl", "--admin", "x", "flags", "a", "on", "b"}, `ctl flags: unexpected argument "b"`},
		{[]string{"ctl", "--admin", "x", "flags", "--reload", "a"}, `ctl flags: --reload takes no flag name (got "a")`},
		{[]string{"ctl", "--admin", "/nonexistent/sock", "status"}, "ctl status: upgrade: admin dial:"},
		{[]string{"load", "--phones", "3"}, "load: --phones 3: want an even number"},
		{[]string{"nope"}, `unknown command "nope"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, &stdout, &stderr)
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.want)
		})
	}
}

// dial makes a call from a (1000) to b (2000) and returns the window, in
// unix milliseconds, in which it was connected.
func dial(t *testing.T, a, b *loadPhone) (before, after int64) {
	t.Helper()
	require.NoError(t, a.send("OFFHOOK"))
	require.NoError(t, a.expect("DIALTONE"))
	for _, l := range []string{"KEY 2", "KEY 0", "KEY 0", "KEY 0", "KEY #"} {
		require.NoError(t, a.send(l))
	}
	require.NoError(t, a.expect("RINGBACK 2000"))
	require.NoError(t, b.expect("RING 1000"))
	before = time.Now().UnixMilli()
	require.NoError(t, b.send("OFFHOOK"))
	require.NoError(t, b.expect("CONNECTED 1000"))
	require.NoError(t, a.expect("CONNECTED 2000"))
	return before, time.Now().UnixMilli()
}

// streams sends numbered AUDIO both ways until stop, which waits for every
// frame sent to arrive.
type streams struct {
	t      *testing.T
	a, b   *loadPhone
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sent   [2]uint64
}

func startStreams(ctx context.Context, t *testing.T, cfg loadConfig, a, b *loadPhone) *streams {
	sctx, cancel := context.WithCancel(ctx)
	s := &streams{t: t, a: a, b: b, cancel: cancel}
	for i, p := range []*loadPhone{a, b} {
		s.wg.Go(func() {
			var err error
			s.sent[i], err = p.stream(sctx, cfg)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("stream: %v", err)
			}
		})
	}
	return s
}

// flowing waits until n more frames have reached a, and n have reached b.
func (s *streams) flowing(n uint64) {
	s.t.Helper()
	from := s.a.recv()
	require.Eventually(s.t, func() bool { return s.a.recv() > from+n && s.b.recv() > n }, 5*time.Second, time.Millisecond)
}

func (s *streams) stop() [2]uint64 {
	s.t.Helper()
	s.cancel()
	s.wg.Wait()
	require.Eventually(s.t, func() bool { return s.b.recv() == s.sent[0] && s.a.recv() == s.sent[1] }, 5*time.Second, time.Millisecond)
	return s.sent
}
