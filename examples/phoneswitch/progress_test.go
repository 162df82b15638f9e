package main

import (
	"bytes"
	"os"
	"testing"

	"github.com/hotline-go/hotline/upgrade"
	"github.com/stretchr/testify/require"
)

func TestBar(t *testing.T) {
	tests := []struct {
		p    upgrade.Progress
		want string
	}{
		{upgrade.Progress{Phase: "batch", Done: 0, Total: 20}, "[..............................] 0/20 batch"},
		{upgrade.Progress{Phase: "batch", Done: 7, Total: 20}, "[##########....................] 7/20 batch"},
		{upgrade.Progress{Phase: "resumed", Done: 20, Total: 20}, "[##############################] 20/20 resumed"},
		{upgrade.Progress{Phase: "changed", Done: 0, Total: 0}, "[..............................] 0/0 changed"},
		{upgrade.Progress{Phase: "odd", Done: 30, Total: 20}, "[##############################] 30/20 odd"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) { require.Equal(t, tt.want, bar(tt.p)) })
	}
}

// Off a terminal, each progress line is a plain line; on one, a bar is
// redrawn in place and its line ended once.
func TestProgress(t *testing.T) {
	var plain bytes.Buffer
	p := newProgress(&plain)
	require.False(t, p.tty)
	p.show(upgrade.Progress{Phase: "canaries", Done: 3, Total: 3})
	p.show(upgrade.Progress{Phase: "resumed", Done: 17, Total: 17})
	p.end()
	require.Equal(t, "progress: canaries 3/3\nprogress: resumed 17/17\n", plain.String())

	var tty bytes.Buffer
	p = &progress{w: &tty, tty: true}
	p.show(upgrade.Progress{Phase: "canaries", Done: 1, Total: 1})
	p.show(upgrade.Progress{Phase: "batch", Done: 1, Total: 2})
	p.end()
	p.end()
	require.Equal(t, "\r\033[K[##############################] 1/1 canaries (watching)"+
		"\r\033[K[###############...............] 1/2 batch\n", tty.String())

	f, err := os.CreateTemp(t.TempDir(), "out")
	require.NoError(t, err)
	require.False(t, isTerminal(f), "a file is not a terminal")
	require.NoError(t, f.Close())
}
