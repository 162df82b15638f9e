//go:build linux

package upgrade_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/upgrade/internal/testserver"
)

// These tests run the service of package testserver as real processes: the
// test binary, re-executed through a symlink that a test can point at
// another executable ("replace the file, then send SIGHUP"). Every process
// they start is stopped by the test's cleanup. Waiting here polls real
// processes, so it sleeps.

const waitLimit = 15 * time.Second

// waitFor polls cond until it holds, or fails the test after waitLimit.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// exited reports whether pid has exited (a zombie counts: nothing runs).
func exited(pid int) bool { return !testserver.Running(pid) }

func freeAddr(t testing.TB, network string) string {
	t.Helper()
	addr, err := testserver.FreeAddr(network)
	require.NoError(t, err)
	return addr
}

type harness struct {
	t       *testing.T
	cfg     testserver.Config
	exe     string // the test binary
	bin     string // the path every generation is started from
	logPath string

	mu   sync.Mutex
	pids map[int]bool // every server and plugin process seen
}

func startServer(t *testing.T, upgradeTimeout time.Duration) *harness {
	t.Helper()
	dir := t.TempDir()
	exe, err := os.Executable()
	require.NoError(t, err)
	h := &harness{
		t:   t,
		exe: exe,
		bin: filepath.Join(dir, "server"),
		cfg: testserver.Config{
			Dir:            dir,
			TCP:            freeAddr(t, "tcp"),
			UDP:            freeAddr(t, "udp"),
			HTTP:           freeAddr(t, "tcp"),
			UpgradeTimeout: upgradeTimeout,
			DrainTimeout:   5 * time.Second,
		},
		logPath: filepath.Join(dir, "server.log"),
		pids:    make(map[int]bool),
	}
	require.NoError(t, os.Symlink(exe, h.bin))
	logf, err := os.Create(h.logPath)
	require.NoError(t, err)
	defer logf.Close()

	cmd := exec.Command(h.bin)
	// The race detector sleeps a second at exit by default: a drain that
	// waits for a plugin to exit, and each handoff, would take that long.
	race := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	cmd.Env = append(os.Environ(), h.cfg.Environ()...)
	cmd.Env = append(cmd.Env, "GORACE="+race)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	reaped := make(chan struct{})
	go func() {
		_ = cmd.Wait() // it exits with status 0 after its handoff
		close(reaped)
	}()
	t.Cleanup(func() {
		h.stopAll()
		<-reaped
		h.checkLog()
	})
	h.track(cmd.Process.Pid)
	h.waitServing(cmd.Process.Pid)
	return h
}

func (h *harness) track(pid int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pids[pid] = true
}

// stopAll ends every process the test started: SIGTERM (the servers drain),
// then SIGKILL for anything left.
func (h *harness) stopAll() {
	h.mu.Lock()
	var pids []int
	for pid := range h.pids {
		pids = append(pids, pid)
	}
	h.mu.Unlock()
	for _, pid := range pids {
		if !exited(pid) {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
	}
	deadline := time.Now().Add(waitLimit)
	for _, pid := range pids {
		for !exited(pid) && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		if !exited(pid) {
			h.t.Errorf("process %d did not stop on SIGTERM; killing it", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func (h *harness) logText() string {
	b, err := os.ReadFile(h.logPath)
	require.NoError(h.t, err)
	return string(b)
}

// checkLog fails the test on a race report from any server process, and
// shows the servers' log when the test failed.
func (h *harness) checkLog() {
	log := h.logText()
	if strings.Contains(log, "WARNING: DATA RACE") {
		h.t.Error("a server process reported a data race")
	}
	if h.t.Failed() {
		h.t.Logf("server log:\n%s", log)
	}
}

// waitLog waits until the servers' log has a line with every one of parts.
func (h *harness) waitLog(parts ...string) string {
	h.t.Helper()
	var found string
	waitFor(h.t, fmt.Sprintf("a log line with %q", parts), func() bool {
		for line := range strings.Lines(h.logText()) {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(line, p)
			}
			if ok {
				found = line
				return true
			}
		}
		return false
	})
	return found
}

// pid returns the PID that the PID file names, 0 if none.
func (h *harness) pid() int { return testserver.ReadPID(h.cfg.PIDFile()) }

func (h *harness) pluginPID(server int) int {
	h.t.Helper()
	var pid int
	waitFor(h.t, fmt.Sprintf("the plugin of %d", server), func() bool {
		b, err := os.ReadFile(h.cfg.PluginFile(server))
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(string(b))
		return err == nil
	})
	h.track(pid)
	return pid
}

// waitServing waits until pid is named by the PID file and answers new
// connections.
func (h *harness) waitServing(pid int) {
	h.t.Helper()
	waitFor(h.t, fmt.Sprintf("process %d to serve", pid), func() bool {
		if h.pid() != pid {
			return false
		}
		c, err := testserver.Dial("tcp", h.cfg.TCP)
		if err != nil {
			return false
		}
		defer c.Close()
		got, err := c.Echo("who")
		return err == nil && got == pid
	})
	h.pluginPID(pid)
}

// waitNext waits for the process that replaces old and returns its PID.
func (h *harness) waitNext(old int) int {
	h.t.Helper()
	var next int
	waitFor(h.t, fmt.Sprintf("a process to replace %d", old), func() bool {
		next = h.pid()
		return next != 0 && next != old
	})
	h.track(next)
	return next
}

// waitHandedOver waits until next has seen its predecessor exit: only then
// may the next upgrade start.
func (h *harness) waitHandedOver(next int) {
	h.t.Helper()
	h.waitLog(fmt.Sprintf("pid=%d", next), `msg="upgrade: previous process exited"`)
}

func (h *harness) waitExited(pid int, what string) {
	h.t.Helper()
	waitFor(h.t, fmt.Sprintf("%s (%d) to exit", what, pid), func() bool { return exited(pid) })
}

func (h *harness) signal(pid int, sig syscall.Signal) {
	h.t.Helper()
	require.NoError(h.t, syscall.Kill(pid, sig))
}

func (h *harness) http(method, path string) (int, string) {
	h.t.Helper()
	req, err := http.NewRequestWithContext(h.t.Context(), method, "http://"+h.cfg.HTTP+path, nil)
	require.NoError(h.t, err)
	// A new connection each time: it goes to the process that accepts now.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	require.NoError(h.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(h.t, err)
	return resp.StatusCode, string(b)
}

// udpEcho returns the PID of the process that answers a datagram.
func (h *harness) udpEcho(msg string) int {
	h.t.Helper()
	c, err := net.Dial("udp", h.cfg.UDP)
	require.NoError(h.t, err)
	defer c.Close()
	buf := make([]byte, 512)
	for range 10 { // datagrams may be lost; retry
		_, err := c.Write([]byte(msg))
		require.NoError(h.t, err)
		require.NoError(h.t, c.SetReadDeadline(time.Now().Add(500*time.Millisecond)))
		n, err := c.Read(buf)
		if err != nil {
			continue
		}
		var pid int
		var got string
		_, err = fmt.Sscanf(string(buf[:n]), "echo %d %s", &pid, &got)
		require.NoError(h.t, err)
		require.Equal(h.t, msg, got)
		return pid
	}
	h.t.Fatal("no answer over UDP")
	return 0
}

// load keeps clients busy against the echo: long-lived connections that
// exchange a line every tick and reconnect when the server says goodbye, and
// new connections dialled every tick. It counts refused connections and lost
// requests (sent, never answered). Bounded: at most maxRounds per client.
type load struct {
	t        *testing.T
	stopC    chan struct{}
	wg       sync.WaitGroup
	refused  atomic.Int64
	lost     atomic.Int64
	answered atomic.Int64
	byes     atomic.Int64

	mu     sync.Mutex
	byPID  map[int]int
	errors []string
}

const (
	loadTick  = 2 * time.Millisecond
	maxRounds = 20000
)

func startLoad(t *testing.T, network, addr string, longLived, dialers int) *load {
	l := &load{t: t, stopC: make(chan struct{}), byPID: make(map[int]int)}
	for i := range longLived {
		l.wg.Add(1)
		go l.run(network, addr, fmt.Sprintf("long%d", i), true)
	}
	for i := range dialers {
		l.wg.Add(1)
		go l.run(network, addr, fmt.Sprintf("new%d", i), false)
	}
	t.Cleanup(l.stop)
	return l
}

func (l *load) fail(counter *atomic.Int64, err error) {
	counter.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errors) < 10 {
		l.errors = append(l.errors, err.Error())
	}
}

func (l *load) run(network, addr, name string, keep bool) {
	defer l.wg.Done()
	tick := time.NewTicker(loadTick)
	defer tick.Stop()
	var c *testserver.Client
	defer func() {
		if c != nil {
			_ = c.Close()
		}
	}()
	for round := range maxRounds {
		select {
		case <-l.stopC:
			return
		case <-tick.C:
		}
		if c == nil {
			var err error
			if c, err = testserver.Dial(network, addr); err != nil {
				l.fail(&l.refused, err)
				continue
			}
		}
		pid, err := c.Echo(fmt.Sprintf("%s-%d", name, round))
		if err != nil {
			l.fail(&l.lost, err)
			_ = c.Close()
			c = nil
			continue
		}
		l.answered.Add(1)
		l.mu.Lock()
		l.byPID[pid]++
		l.mu.Unlock()
		if c.Closing() {
			l.byes.Add(1)
		}
		if c.Closing() || !keep {
			_ = c.Close()
			c = nil
		}
	}
}

func (l *load) answeredBy(pid int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byPID[pid]
}

func (l *load) stop() {
	select {
	case <-l.stopC:
	default:
		close(l.stopC)
	}
	l.wg.Wait()
}

// check stops the load and requires that nothing was refused or lost.
func (l *load) check(name string) {
	l.t.Helper()
	l.stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Logf("%s: %d answered, %d refused, %d lost, %d goodbyes, by PID %v",
		name, l.answered.Load(), l.refused.Load(), l.lost.Load(), l.byes.Load(), l.byPID)
	assert.Zero(l.t, l.refused.Load(), "%s: refused connections: %q", name, l.errors)
	assert.Zero(l.t, l.lost.Load(), "%s: lost requests: %q", name, l.errors)
	assert.NotZero(l.t, l.answered.Load(), name)
}

// point makes the server path name target: the next generation runs it.
func (h *harness) point(target string) {
	h.t.Helper()
	tmp := h.bin + ".new"
	require.NoError(h.t, os.Symlink(target, tmp))
	require.NoError(h.t, os.Rename(tmp, h.bin))
}
