//go:build linux

package upgrade_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/upgrade/internal/testserver"
)

// Five SIGHUPs in a row under load: every generation inherits the TCP, Unix
// and UDP sockets, no connection is refused, no request lost, the old
// generation's plugin is stopped, not orphaned, and the PID file follows.
func TestSIGHUPUnderLoad(t *testing.T) {
	h := startServer(t, 10*time.Second)
	tcp := startLoad(t, "tcp", h.cfg.TCP, 8, 4)
	unix := startLoad(t, "unix", h.cfg.UnixSocket(), 1, 1)

	pids := []int{h.pid()}
	for i := range 5 {
		old := pids[len(pids)-1]
		oldPlugin := h.pluginPID(old)
		start := time.Now()
		h.signal(old, syscall.SIGHUP)
		next := h.waitNext(old)
		readyAfter := time.Since(start)
		h.waitExited(old, "the old process")
		exitedAfter := time.Since(start)
		h.waitExited(oldPlugin, "the old process's plugin")
		h.waitHandedOver(next)
		assert.False(t, exited(h.pluginPID(next)), "the new process's plugin runs")
		waitFor(t, "answers from the new process", func() bool {
			return tcp.answeredBy(next) > 0 && unix.answeredBy(next) > 0
		})
		t.Logf("SIGHUP %d: %d -> %d, PID file after %v, old process gone after %v",
			i+1, old, next, readyAfter.Round(time.Millisecond), exitedAfter.Round(time.Millisecond))
		pids = append(pids, next)
	}
	tcp.check("tcp")
	unix.check("unix")
	assert.GreaterOrEqual(t, tcp.byes.Load(), int64(8*5), "each long-lived connection was told to move at each handoff")
	for _, pid := range pids {
		assert.NotZero(t, tcp.answeredBy(pid), "process %d answered", pid)
	}

	last := pids[len(pids)-1]
	assert.Equal(t, last, h.udpEcho("ping"), "UDP socket inherited")
	code, body := h.http(http.MethodGet, "/healthz")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ready\n", body)

	// Shut down: SIGTERM drains the last generation, which removes its PID
	// file and stops its plugin.
	plugin := h.pluginPID(last)
	h.signal(last, syscall.SIGTERM)
	h.waitExited(last, "the last process")
	h.waitExited(plugin, "its plugin")
	assert.NoFileExists(t, h.cfg.PIDFile())
	assert.NoFileExists(t, h.cfg.UnixSocket(), "a shutdown removes the Unix socket")
}

// A new binary that exits at start, then one that never becomes ready: the
// old process keeps serving through both, says why, and refuses a second
// request while one is in progress; the next good binary takes over.
func TestFailedUpgradeKeepsOldProcessServing(t *testing.T) {
	// Long enough for a good binary to start on a loaded 2-core machine
	// under the race detector (3 s was not); the hanging one costs it once.
	h := startServer(t, 8*time.Second)
	tcp := startLoad(t, "tcp", h.cfg.TCP, 2, 1)
	gen1 := h.pid()

	t.Run("new binary exits at start", func(t *testing.T) {
		script := filepath.Join(h.cfg.Dir, "broken.sh")
		require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\necho 'broken build' >&2\nexit 3\n"), 0o755))
		h.point(script)
		defer h.point(h.exe)

		code, body := h.http(http.MethodPost, "/upgrade")
		assert.Equal(t, http.StatusBadGateway, code)
		assert.Contains(t, body, "upgrade: new process failed before it was ready")
		assert.Contains(t, body, "exit status 3")
		h.waitLog(fmt.Sprintf("pid=%d", gen1), `msg="upgrade: new process failed; this process keeps serving"`, "exit status 3")
		assert.Equal(t, gen1, h.pid())
		code, body = h.http(http.MethodGet, "/healthz")
		assert.Equal(t, http.StatusOK, code)
		assert.Equal(t, "ready\n", body)
	})

	t.Run("new binary never becomes ready", func(t *testing.T) {
		require.NoError(t, os.WriteFile(h.cfg.ModeFile(), []byte("hang"), 0o644))
		defer func() { require.NoError(t, os.Remove(h.cfg.ModeFile())) }()

		h.signal(gen1, syscall.SIGHUP)
		h.waitLog("testserver: hanging before ready")
		// A second SIGHUP, and the admin command, while it runs: refused.
		h.signal(gen1, syscall.SIGHUP)
		h.waitLog(fmt.Sprintf("pid=%d", gen1), `msg="upgrade: request refused"`, `trigger="signal hangup"`, "upgrade: an upgrade is in progress")
		code, body := h.http(http.MethodPost, "/upgrade")
		assert.Equal(t, http.StatusConflict, code)
		assert.Contains(t, body, "upgrade: an upgrade is in progress")

		line := h.waitLog(fmt.Sprintf("pid=%d", gen1), "upgrade: new process not ready in time")
		m := regexp.MustCompile(`new child pid=(\d+) timed out`).FindStringSubmatch(line)
		require.NotNil(t, m, line)
		child, err := strconv.Atoi(m[1])
		require.NoError(t, err)
		h.track(child)
		childPlugin := h.pluginPID(child)
		h.waitExited(child, "the child that never became ready")
		h.waitExited(childPlugin, "its plugin (Pdeathsig)")
		assert.Equal(t, gen1, h.pid())
		code, _ = h.http(http.MethodGet, "/healthz")
		assert.Equal(t, http.StatusOK, code)
	})

	t.Run("then a good binary takes over", func(t *testing.T) {
		h.signal(gen1, syscall.SIGHUP)
		next := h.waitNext(gen1)
		h.waitExited(gen1, "the old process")
		waitFor(t, "answers from the new process", func() bool { return tcp.answeredBy(next) > 0 })
	})
	tcp.check("tcp")
}

// A long drain holds up the next upgrade: it is refused while the process
// it would replace's predecessor still drains, and goes through once that
// one has exited.
func TestDrainingPredecessorBlocksNextUpgrade(t *testing.T) {
	h := startServer(t, 10*time.Second)
	gen1 := h.pid()

	lazy, err := testserver.Dial("tcp", h.cfg.TCP)
	require.NoError(t, err)
	defer lazy.Close()
	pid, err := lazy.Echo("hold")
	require.NoError(t, err)
	require.Equal(t, gen1, pid)

	h.signal(gen1, syscall.SIGHUP)
	gen2 := h.waitNext(gen1)
	h.waitServing(gen2)
	// gen1 drains, and waits for this connection: it still answers, and asks
	// us to leave.
	waitFor(t, "the old process to say goodbye", func() bool {
		pid, err := lazy.Echo("still here")
		require.NoError(t, err)
		require.Equal(t, gen1, pid)
		return lazy.Closing()
	})

	h.signal(gen2, syscall.SIGHUP)
	h.waitLog(fmt.Sprintf("pid=%d", gen2), `msg="upgrade: request refused"`, "previous process still draining")
	assert.False(t, exited(gen1))
	assert.Equal(t, gen2, h.pid())

	require.NoError(t, lazy.Close())
	h.waitExited(gen1, "the draining process")
	h.waitHandedOver(gen2)
	h.signal(gen2, syscall.SIGHUP)
	gen3 := h.waitNext(gen2)
	h.waitServing(gen3)
	h.waitExited(gen2, "the second process")
}
