package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/examples/phoneswitch/phone"
	"github.com/hotline-go/hotline/upgrade"
)

// buildWithPlugins compiles this command, phone-v1 and phone-v2 into dir
// and dir/plugins, with dir/plugins/SHA256SUMS as the Makefile writes it,
// and returns the command.
func buildWithPlugins(t *testing.T, dir string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	plugins := filepath.Join(dir, "plugins")
	require.NoError(t, os.MkdirAll(plugins, 0o755))
	out, err := exec.Command("go", "build", "-o", dir, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	out, err = exec.Command("go", "build", "-o", plugins, "./plugins/phone-v1", "./plugins/phone-v2").CombinedOutput()
	require.NoError(t, err, "%s", out)
	var sums strings.Builder
	for _, name := range []string{"phone-v1", "phone-v2"} {
		b, err := os.ReadFile(filepath.Join(plugins, name))
		require.NoError(t, err)
		sum := sha256.Sum256(b)
		fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(sum[:]), name)
	}
	require.NoError(t, os.WriteFile(filepath.Join(plugins, upgrade.PluginSums), []byte(sums.String()), 0o644))
	return filepath.Join(dir, "phoneswitch")
}

// TestPluginHosted runs the switch with --in-process=false: the phones'
// machines run in the phone-v1 and phone-v2 plugin processes.
func TestPluginHosted(t *testing.T) {
	dir := t.TempDir()
	exe := buildWithPlugins(t, dir)
	t.Run("call and upgrade", func(t *testing.T) { testPluginCall(t, exe) })
	t.Run("bad checksum", func(t *testing.T) { testPluginChecksum(t, exe) })
	t.Run("demo", func(t *testing.T) { testDemo(t, exe, "--in-process=false") })
}

var registered = regexp.MustCompile(`"registered plugin" pid=(\d+) binary=(phone-v[12]) machine=phone version=(v[12]) sha256=[0-9a-f]{64}`)

// startedPID matches the log line of a plugin process started: the
// switch's pid, the plugin's name, the plugin process's pid.
var startedPID = regexp.MustCompile(`"plugin started" pid=(\d+) plugin=(phone-v[12]) pid=(\d+)`)

func testPluginCall(t *testing.T, exe string) {
	ctx := context.Background()
	dir := t.TempDir()
	addr, err := freeAddr()
	require.NoError(t, err)
	httpAddr, err := freeAddr()
	require.NoError(t, err)
	sw := &switchProc{exe: exe, admin: filepath.Join(dir, "admin.sock"), pidFile: filepath.Join(dir, "pid"),
		addr: addr, http: httpAddr, log: filepath.Join(dir, "switch.log"), args: []string{"--in-process=false"}}
	require.NoError(t, sw.start(ctx, "v1", 5*time.Second))
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			require.NoError(t, sw.stop())
		}
		if t.Failed() {
			b, _ := os.ReadFile(sw.log)
			t.Logf("switch log:\n%s", b)
		}
	})
	logText, err := os.ReadFile(sw.log)
	require.NoError(t, err)
	require.Len(t, registered.FindAllStringSubmatch(string(logText), -1), 2, "both plugins registered:\n%s", logText)

	cfg := loadConfig{addr: addr, frameInterval: 2 * time.Millisecond, callLength: time.Minute}
	a, err := connectPhone(ctx, cfg, "1000")
	require.NoError(t, err)
	defer func() { require.NoError(t, a.close()) }()
	b, err := connectPhone(ctx, cfg, "2000")
	require.NoError(t, err)
	defer func() { require.NoError(t, b.close()) }()

	before, after := dial(t, a, b)

	st := statusOf(t, a)
	require.Equal(t, "v1", st.Version, st.String())
	require.Equal(t, "in_progress", st.State, st.String())

	s := startStreams(ctx, t, cfg, a, b)
	s.flowing(10)

	out, err := ctlRun(t, exe, sw.admin, "upgrade", "v2", "--strategy", "all")
	require.NoError(t, err, out)
	require.Contains(t, out, "from=v1 to=v2 phones=2")
	st = statusOf(t, a)
	require.Equal(t, "v2", st.Version, st.String())
	since, ok := st.Get("since")
	require.True(t, ok, st.String())
	ms, err := strconv.ParseInt(since, 10, 64)
	require.NoError(t, err)
	require.True(t, ms >= before && ms <= after, "since=%d, connected between %d and %d", ms, before, after)
	s.flowing(10)

	out, err = ctlRun(t, exe, sw.admin, "rollback")
	require.NoError(t, err, out)
	require.Contains(t, out, "from=v2 to=v1")
	require.Equal(t, "v1", statusOf(t, b).Version)
	out, err = ctlRun(t, exe, sw.admin, "upgrade", "v2")
	require.NoError(t, err, out)
	got, _ := statusOf(t, b).Get("since")
	require.Equal(t, since, got, "since survives a downgrade and an upgrade")
	s.flowing(10)

	// A feature flag reaches the plugins: the host sends the flags on with
	// each event, and the phone's STATUS shows it.
	for _, value := range []string{"on", "off"} {
		out, err = ctlRun(t, exe, sw.admin, "flags", phone.FlagHDAudio, value)
		require.NoError(t, err, out)
		for _, p := range []*loadPhone{a, b} {
			st := statusOf(t, p)
			codec, _ := st.Get("codec")
			require.Equal(t, value == "on", codec == "hd", "hd-audio %s: %s", value, st.String())
		}
	}

	// The plugin that runs both phones' code is killed mid-call: the host
	// restarts it and delivers the event again (the state and data stay on
	// the host), so no frame is lost.
	// A version's process stops with its last machine and starts again for
	// the next one, so the rollback and the second upgrade started a new
	// phone-v2: kill the one running now.
	v2 := latestStarted(t, sw.log, "phone-v2")
	require.False(t, exited(v2))
	require.NoError(t, syscall.Kill(v2, syscall.SIGKILL))
	require.Eventually(t, func() bool { return exited(v2) }, 5*time.Second, 10*time.Millisecond)
	s.flowing(10)
	s.flowing(10)
	st = statusOf(t, a)
	require.Equal(t, "v2", st.Version, st.String())
	got, _ = st.Get("since")
	require.Equal(t, since, got, "since survives the plugin's death")

	// A binary restart: the new process loads plugins of its own, and takes
	// the call over; the old one exits, and its plugins with it.
	old, err := sw.pid()
	require.NoError(t, err)
	restarted, err := sw.restart()
	require.NoError(t, err)
	require.Contains(t, restarted, "2 lines (2 phones) handed over live")
	require.Eventually(t, func() bool { return exited(old) }, 5*time.Second, 10*time.Millisecond)
	for _, pid := range startedBy(t, sw.log, old) {
		require.Eventually(t, func() bool { return exited(pid) }, 5*time.Second, 10*time.Millisecond, "plugin pid %d outlives its switch", pid)
	}
	logText, err = os.ReadFile(sw.log)
	require.NoError(t, err)
	require.Len(t, registered.FindAllStringSubmatch(string(logText), -1), 4, "the new process registered both plugins")
	v2 = latestStarted(t, sw.log, "phone-v2")
	require.False(t, exited(v2), "the new process runs phone-v2 for the phones it restored")
	// The rollback history came along: a rollback goes back to v1, and an
	// upgrade to v2 again, as in the old process.
	out, err = ctlRun(t, exe, sw.admin, "rollback")
	require.NoError(t, err, out)
	require.Contains(t, out, "from=v2 to=v1 phones=2")
	require.Equal(t, "v1", statusOf(t, a).Version)
	out, err = ctlRun(t, exe, sw.admin, "upgrade", "v2")
	require.NoError(t, err, out)
	require.Contains(t, out, "from=v1 to=v2 phones=2")
	s.flowing(10)
	for _, p := range []*loadPhone{a, b} {
		st := statusOf(t, p)
		require.Equal(t, "v2", st.Version, st.String())
		got, _ := st.Get("since")
		require.Equal(t, since, got, "since survives a binary restart")
	}

	s.stop()
	for _, p := range []*loadPhone{a, b} {
		p.mu.Lock()
		require.Zero(t, p.ooo, "phone %s: frames out of order", p.number)
		p.mu.Unlock()
	}
	require.NoError(t, a.send("ONHOOK"))
	require.NoError(t, a.expect("ONHOOK"))
	require.NoError(t, b.expect("HANGUP"))

	// SIGTERM: the switch stops its plugins' processes as it exits.
	stopped = true
	require.NoError(t, sw.stop())
	logText, err = os.ReadFile(sw.log)
	require.NoError(t, err)
	started := startedPID.FindAllStringSubmatch(string(logText), -1)
	require.GreaterOrEqual(t, len(started), 5, "two plugins probed, v1 for the phones, v2 at the upgrade, v2 after the kill, and the new process's")
	for _, m := range started {
		pid, err := strconv.Atoi(m[3])
		require.NoError(t, err)
		require.Eventually(t, func() bool { return exited(pid) }, 5*time.Second, 10*time.Millisecond, "%s pid %d outlives the switch", m[2], pid)
	}
}

// startedBy returns the pids of the plugin processes that the switch of
// pid started, as its log says.
func startedBy(t *testing.T, log string, pid int) []int {
	t.Helper()
	text, err := os.ReadFile(log)
	require.NoError(t, err)
	var pids []int
	for _, m := range startedPID.FindAllStringSubmatch(string(text), -1) {
		if m[1] != strconv.Itoa(pid) {
			continue
		}
		p, err := strconv.Atoi(m[3])
		require.NoError(t, err)
		pids = append(pids, p)
	}
	require.NotEmpty(t, pids, "switch %d started no plugin", pid)
	return pids
}

// latestStarted is the pid of the last process of the plugin named name
// that the switch's log says it started.
func latestStarted(t *testing.T, log, name string) int {
	t.Helper()
	text, err := os.ReadFile(log)
	require.NoError(t, err)
	pid := 0
	for _, m := range startedPID.FindAllStringSubmatch(string(text), -1) {
		if m[2] == name {
			pid, err = strconv.Atoi(m[3])
			require.NoError(t, err)
		}
	}
	require.NotZero(t, pid, "no %q started in the log", name)
	return pid
}

// A plugin whose checksum is missing or wrong stops serve at start.
func testPluginChecksum(t *testing.T, exe string) {
	plugins := filepath.Join(filepath.Dir(exe), "plugins")
	good, err := os.ReadFile(filepath.Join(plugins, upgrade.PluginSums))
	require.NoError(t, err)
	first, _, _ := strings.Cut(string(good), "\n")
	wrong := strings.Repeat("0", 64) + "  phone-v1\n" + strings.SplitN(string(good), "\n", 2)[1]
	for _, tt := range []struct{ name, sums, want string }{
		{"missing", first + "\n", "phone-v2: not listed in"},
		{"mismatched", wrong, "checksum"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			pd := filepath.Join(dir, "plugins")
			require.NoError(t, os.MkdirAll(pd, 0o755))
			for _, n := range []string{"phone-v1", "phone-v2"} {
				require.NoError(t, os.Symlink(filepath.Join(plugins, n), filepath.Join(pd, n)))
			}
			require.NoError(t, os.WriteFile(filepath.Join(pd, upgrade.PluginSums), []byte(tt.sums), 0o644))
			addr, err := freeAddr()
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, exe, "serve", "--in-process=false", "--plugins", pd,
				"--listen", addr, "--admin", filepath.Join(dir, "admin.sock")).CombinedOutput()
			require.Error(t, err, "%s", out)
			require.Contains(t, string(out), tt.want)
		})
	}
}
