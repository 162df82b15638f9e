package fsm_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/fsm"
)

func TestPaths(t *testing.T) {
	tests := []struct {
		name     string
		up, down []string
		set      bool
		wantUp   []string
		wantDown []string
	}{
		{name: "undeclared"},
		{name: "declared", set: true, up: []string{"v1", "v2"}, down: []string{"v2"}, wantUp: []string{"v1", "v2"}, wantDown: []string{"v2"}},
		{name: "none", set: true, wantUp: []string{}, wantDown: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := fsm.Define("m", "v3", "idle", 0)
			if tt.set {
				m.UpgradesFromVersions(tt.up...)
				m.DowngradesToVersions(tt.down...)
			}
			var p fsm.Paths = m
			require.Equal(t, tt.wantUp, p.UpgradesFrom())
			require.Equal(t, tt.wantDown, p.DowngradesTo())
		})
	}
}
