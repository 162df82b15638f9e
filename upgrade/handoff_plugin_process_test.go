//go:build linux

package upgrade_test

import (
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/plugin"
)

// buildTestPlugin builds internal/plugintest/plugin (the counter machine's
// v1 and v2) and returns the sequence server's "plugin" setting for it.
func buildTestPlugin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "counter-plugin")
	out, err := exec.Command("go", "build", "-o", bin, "../internal/plugintest/plugin").CombinedOutput()
	require.NoError(t, err, "building the test plugin: %s", out)
	sum, err := plugin.FileChecksum(bin)
	require.NoError(t, err)
	return bin + " " + hex.EncodeToString(sum)
}

var pluginPIDRE = regexp.MustCompile(`handoff test: plugin started" pid=(\d+) plugin_pid=(\d+)`)

// pluginPIDs returns the PID of the plugin process each server generation
// started, by the server's PID.
func (h *seqHarness) pluginPIDs() map[int]int {
	h.t.Helper()
	out := map[int]int{}
	for _, m := range pluginPIDRE.FindAllStringSubmatch(h.logText(), -1) {
		server, err := strconv.Atoi(m[1])
		require.NoError(h.t, err)
		p, err := strconv.Atoi(m[2])
		require.NoError(h.t, err)
		out[server] = p
	}
	return out
}

func (h *seqHarness) logText() string {
	h.t.Helper()
	b, err := os.ReadFile(h.log)
	require.NoError(h.t, err)
	return string(b)
}

// requireOnlyPlugin checks that the serving generation's plugin runs and
// that every plugin process of an earlier (or failed) generation is gone.
func (h *seqHarness) requireOnlyPlugin(t *testing.T) int {
	t.Helper()
	cur, err := strconv.Atoi(h.ask("plugin"))
	require.NoError(t, err)
	pids := h.pluginPIDs()
	require.Equal(t, pids[h.pid()], cur, "the serving process's own plugin")
	require.False(t, exited(cur), "the serving process's plugin runs")
	for server, p := range pids {
		if p != cur {
			waitFor(t, fmt.Sprintf("plugin %d of process %d to stop", p, server), func() bool { return exited(p) })
		}
	}
	return cur
}

// Machines whose code runs in a plugin process move to the new process on
// the same plugin version, in the plugin process the new process started:
// streams through them lose, duplicate or reorder nothing across three
// SIGHUPs and a failed one, a running state timeout and an event it
// postponed travel with the machine, no plugin process is left behind, and
// each new process holds as many descriptors and goroutines as the first.
func TestHandoffPluginMachines(t *testing.T) {
	h := startSeqServerWith(t, map[string]string{"plugin": buildTestPlugin(t)})
	ss := streamers(t, h.addr, 8)
	waitProgress(t, ss)

	// A session armed (its state timeout running), with an increment
	// postponed until the timeout fires.
	_, ask := lineClient(t, h.addr)
	for i := 1; i <= 3; i++ {
		require.Equal(t, fmt.Sprintf("%d %d v1 x", i, h.pid()), ask("x"))
	}
	armed := time.Now()
	require.Equal(t, "armed", ask("arm 8000"))
	require.Equal(t, "cast", ask("incr 5"))
	require.Equal(t, "3 armed", ask("get"), "the increment waits for the timeout")

	plug := h.requireOnlyPlugin(t)
	var first stats
	for i := range 3 {
		old := h.pid()
		pid := h.hup()
		// The old process stopped its plugin before it exited.
		require.True(t, exited(plug), "handoff %d: plugin %d of the old process %d left running", i+1, plug, old)
		require.Contains(t, h.logText(), fmt.Sprintf("plugin stopped\" pid=%d", old))
		waitProgress(t, ss)
		now := h.requireOnlyPlugin(t)
		require.NotEqual(t, plug, now, "handoff %d: the new process runs its own plugin", i+1)
		plug = now
		// Descriptors and goroutines of each new process.
		st := h.floorStats(h.stats())
		if i == 0 {
			first = st
		}
		h.requireSameStats(first, st, i+1)
		if i == 0 {
			require.Less(t, time.Since(armed), 7500*time.Millisecond, "the handoff took too long for this test")
			require.Equal(t, "3 armed", ask("get"), "still armed in process %d, the increment still postponed", pid)
		}
	}

	// A new process that dies after taking the state (its plugin with no
	// one to stop it): the old one serves every plugin machine on.
	h.set("fault", "exit:received")
	h.hupFails("new process failed")
	h.set("fault", "")
	waitProgress(t, ss)
	require.Equal(t, plug, h.requireOnlyPlugin(t), "the old process's plugin serves on")

	// The timeout fires in the last process: Fired adds 1000 + the count
	// at arming (3), and the postponed increment (5) is applied.
	waitFor(t, "the state timeout", func() bool { return ask("get") == "1011 idle" })
	require.GreaterOrEqual(t, time.Since(armed), 8000*time.Millisecond)
	require.Equal(t, fmt.Sprintf("1012 %d v1 y", h.pid()), ask("y"), "the session counts on where it was")

	for _, s := range ss {
		sent, versions, pids := s.finish(t)
		require.Equal(t, sent, versions["v1"], "every line answered by the plugin's v1")
		require.Equal(t, 4, pids, "every generation served the connection")
	}
}
