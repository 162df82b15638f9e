package upgrade_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/upgrade"
)

// syncBuffer is a bytes.Buffer safe for concurrent use, for logs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// records returns the log records with the given message.
func (s *syncBuffer) records(t testing.TB, msg string) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(s.b.Bytes()), []byte("\n")) {
		var rec map[string]any
		require.NoError(t, json.Unmarshal(line, &rec))
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// canaryRun upgrades calc to ver with the canary options while each
// machine has had incs Incs, and calls Get on every machine once the
// canaries run the new version. It returns the report, the error, the
// verdict line and the log.
func canaryRun(t *testing.T, ver string, incs map[string]int, opts ...upgrade.CanaryOption) (upgrade.Report, error, upgrade.Progress, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	h := newCalc(t, upgrade.WithReleaseLogger(slog.New(slog.NewJSONHandler(logs, nil))))
	refs := startCalc(t, h, []string{"m0", "m1", "m2", "m3", "m4"})
	for id, n := range incs {
		for range n {
			require.NoError(t, fsm.Cast(refs[id], Inc{}))
		}
	}
	var verdict upgrade.Progress
	opts = append([]upgrade.CanaryOption{upgrade.CanaryCount(2), upgrade.CanaryWindow(10 * time.Second)}, opts...)
	rep, err := h.Upgrade(t.Context(), "calc", ver, upgrade.WithStrategy(upgrade.Canary(opts...)),
		upgrade.WithProgress(func(p upgrade.Progress) {
			switch p.Phase {
			case "canaries":
				// In ID order, so that the first error reply is m0's.
				for _, id := range slices.Sorted(maps.Keys(refs)) {
					_, _ = fsm.Call(context.Background(), refs[id], Get{}) // an error reply is the point
				}
			case "verdict":
				verdict = p
			}
		}))
	for _, r := range refs {
		require.Equal(t, map[bool]string{true: ver, false: "v1"}[err == nil], version(t, r))
	}
	return rep, err, verdict, logs
}

// v3 answers Get with an error reply for an odd count: its canaries (m0
// and m1, both odd) roll themselves back.
func TestCanaryRollsBackOnErrorReplies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rep, err, verdict, logs := canaryRun(t, "v3", map[string]int{"m0": 1, "m1": 3, "m2": 1})
		require.ErrorIs(t, err, upgrade.ErrCanaryFailed)
		require.Equal(t, "rolled back", rep.Verdict)
		require.Equal(t, 2, rep.CanaryReplies)
		require.Equal(t, 2, rep.CanaryErrors, "m2 is odd too, but no canary")
		require.Contains(t, rep.Reason, "2 error replies of 2 (100.0%, more than the 0% allowed)")
		require.Contains(t, rep.Reason, `calc "m0" on Get: odd count: 1`)
		require.Equal(t, 2, rep.RolledBack)
		require.Equal(t, 0, rep.Changed)
		require.Equal(t, "rolled back: "+rep.Reason, verdict.Detail)

		recs := logs.records(t, "upgrade: upgrade")
		require.Len(t, recs, 1)
		require.Equal(t, "rolled back", recs[0]["verdict"])
		require.Equal(t, rep.Reason, recs[0]["reason"])
		require.EqualValues(t, 2, recs[0]["canary_errors"])
		prog := logs.records(t, "upgrade: progress")
		require.Equal(t, "verdict", prog[len(prog)-1]["phase"])
	})
}

// The same upgrade goes on when the canaries' counts are even.
func TestCanaryGoesOnWithoutErrorReplies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rep, err, verdict, _ := canaryRun(t, "v3", map[string]int{"m0": 2, "m2": 1})
		require.NoError(t, err)
		require.Equal(t, "promoted", rep.Verdict)
		require.Equal(t, 2, rep.CanaryReplies)
		require.Equal(t, 0, rep.CanaryErrors)
		require.Equal(t, "2 canaries healthy for 10s (0 error replies of 2)", rep.Reason)
		require.Equal(t, 5, rep.Changed)
		require.Equal(t, "promoted: "+rep.Reason, verdict.Detail)
	})
}

func TestCanaryErrorRateAndClassifier(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// One error reply of two is 50%: within a 50% budget.
		rep, err, _, _ := canaryRun(t, "v3", map[string]int{"m0": 1}, upgrade.CanaryMaxErrorRate(50))
		require.NoError(t, err)
		require.Equal(t, "promoted", rep.Verdict)
		require.Equal(t, 1, rep.CanaryErrors)
	})
	synctest.Test(t, func(t *testing.T) {
		// A classifier that takes a count of 7 for an error.
		seven := func(ev fsm.Event, reply any) bool { return ev.Name() == "Get" && reply == 7 }
		rep, err, _, _ := canaryRun(t, "v2", map[string]int{"m1": 7}, upgrade.CanaryErrorReply(seven))
		require.ErrorIs(t, err, upgrade.ErrCanaryFailed)
		require.Contains(t, rep.Reason, "1 error replies of 2")
	})
}
