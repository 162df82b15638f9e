package upgrade_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/upgrade"
)

func TestAdminAPI(t *testing.T) {
	var logs bytes.Buffer
	prom := &upgrade.PromMetrics{}
	_, h := newRelease(t, upgrade.WithReleaseLogger(slog.New(slog.NewJSONHandler(&logs, nil))), upgrade.WithMetrics(prom))
	startN(t, h, 20)

	ctx, c, path := serveAdmin(t, h)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	st, err := c.Status(ctx)
	require.NoError(t, err)
	require.Len(t, st, 1)
	require.Equal(t, "v1", st[0].Current)

	dry, err := c.DryRun(ctx, "counter", "v2")
	require.NoError(t, err)
	require.Equal(t, 20, dry.Passed)

	var phases []string
	rep, err := c.Upgrade(ctx, "counter", "v2", "alice", func(p upgrade.Progress) {
		phases = append(phases, p.Phase)
		require.Equal(t, 20, p.Total)
	})
	require.NoError(t, err)
	require.Equal(t, "ok", rep.Result)
	require.Equal(t, "alice", rep.Who)
	require.Equal(t, []string{"suspended", "changed", "resumed"}, phases)

	_, err = c.Upgrade(ctx, "counter", "v9", "alice", nil)
	require.ErrorContains(t, err, "unknown version")

	require.NoError(t, c.Confirm(ctx, "counter"))
	_, err = c.Rollback(ctx, "counter", "bob", nil)
	require.NoError(t, err)
	st, err = c.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, "v1", st[0].Current)
	require.Equal(t, "rollback", st[0].Last.Op)

	// A bad request gets a clear error line.
	conn, err := net.Dial("unix", path)
	require.NoError(t, err)
	_, err = conn.Write([]byte(`{"op":"explode"}` + "\n"))
	require.NoError(t, err)
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	var resp upgrade.AdminResponse
	require.NoError(t, json.Unmarshal(line, &resp))
	require.True(t, resp.Done)
	require.Contains(t, resp.Error, "bad admin request")

	// One log record per move, with who, what, from, to and the figures.
	var upgradeLog map[string]any
	for l := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &rec))
		if rec["msg"] == "upgrade: upgrade" && rec["result"] == "ok" {
			upgradeLog = rec
		}
	}
	require.NotNil(t, upgradeLog, logs.String())
	for _, k := range []string{"who", "machine", "from", "to", "strategy", "result", "machines", "max_pause", "total"} {
		require.Contains(t, upgradeLog, k)
	}
	require.Equal(t, "alice", upgradeLog["who"])

	// And counted for Prometheus.
	var out bytes.Buffer
	_, err = prom.WriteTo(&out)
	require.NoError(t, err)
	require.Contains(t, out.String(), `hotline_upgrades_total{machine="counter",op="upgrade",result="ok"} 1`)
	require.Contains(t, out.String(), `hotline_upgrades_total{machine="counter",op="upgrade",result="refused"} 1`)
	require.Contains(t, out.String(), `hotline_machines{machine="counter",version="v1"} 20`)
	require.Contains(t, out.String(), "# TYPE hotline_upgrades_total counter")
}
