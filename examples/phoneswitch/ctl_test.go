package main

import (
	"testing"
	"time"

	"github.com/hotline-go/hotline/upgrade"
	"github.com/stretchr/testify/require"
)

// A report's line says what its counts are: phones= is the phones a move
// left on the new version; a shadow, which moves none, counts the phones
// it ran beside instead (shadowed=), those live at its start (reloaded=)
// and those started during it. Before, a shadow's line said phones= for
// the phones reloaded, 0 when every phone live at its start had hung up
// before its reload, beside shadowed=12.
func TestReportLine(t *testing.T) {
	tests := []struct {
		name string
		r    *upgrade.Report
		want string
	}{
		{"none", nil, "no report"},
		{"all at once", &upgrade.Report{From: []string{"v1"}, To: "v2", Changed: 20, MaxPause: 2 * time.Millisecond, Strategy: "all-at-once", Result: "ok"},
			"from=v1 to=v2 phones=20 pause=2ms strategy=all-at-once result=ok"},
		{"canary", &upgrade.Report{From: []string{"v1"}, To: "v2", Changed: 23, Exited: 1, Strategy: "canary(then all-at-once)", Result: "ok", Canaries: 3, Verdict: "promoted"},
			"from=v1 to=v2 phones=23 pause=0s strategy=canary(then all-at-once) result=ok canaries=3 verdict=promoted exited=1"},
		{"shadow whose phones all left before their reload",
			&upgrade.Report{From: []string{"v1"}, To: "v2", Changed: 0, Exited: 4, Strategy: "shadow", Result: "ok",
				Shadow: &upgrade.ShadowReport{Machines: 12, Mirrored: 300, Diverged: 8, ByEvent: map[string]int64{"Status": 8}}},
			"from=v1 to=v2 shadowed=12 reloaded=0 started=12 exited=4 pause=0s strategy=shadow result=ok mirrored=300 diverged=8 diverged[Status]=8"},
		{"shadow with a failure",
			&upgrade.Report{From: []string{"v1"}, To: "v2", Changed: 20, Strategy: "shadow", Result: "ok",
				Shadow: &upgrade.ShadowReport{Machines: 40, Mirrored: 4115, Diverged: 21, Failed: 1, ByEvent: map[string]int64{"Status": 20, "Key": 1}}},
			"from=v1 to=v2 shadowed=40 reloaded=20 started=20 exited=0 pause=0s strategy=shadow result=ok mirrored=4115 diverged=21 failed=1 diverged[Key]=1 diverged[Status]=20"},
		{"shadow left running (no window)", &upgrade.Report{To: "v2", Changed: 2, Strategy: "shadow", Result: "ok"},
			"from=- to=v2 reloaded=2 exited=0 pause=0s strategy=shadow result=ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, reportLine(tt.r))
		})
	}
}
