package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSoak is the short form of `make soak`: 25 s of load and chaos on a
// fixed seed, with the phone code in the phone-chaos plugin. Every kind of
// operation runs and succeeds at least once, and every invariant of the
// soak's table holds.
func TestSoak(t *testing.T) {
	exe := build(t)
	plugins := filepath.Join(filepath.Dir(exe), "plugins")
	out, err := exec.Command("go", "build", "-o", plugins+"/", "./plugins/phone-chaos").CombinedOutput()
	require.NoError(t, err, "%s", out)

	var log bytes.Buffer
	cfg := soakConfig{duration: 25 * time.Second, seed: 11, phones: 12, idle: 2, plugins: plugins,
		pluginTimeout: 2 * time.Second, callLength: time.Second}
	res, err := runSoak(context.Background(), exe, cfg, &log)
	require.NoError(t, err, "%s", log.String())
	require.NoError(t, res.verdict(), "%s", log.String())
	for _, k := range opKinds {
		c := res.ops[k]
		if cfg.without[k] {
			require.Positive(t, c.excluded, "%s never drawn", k)
			continue
		}
		require.Positive(t, c.attempted, "%s never ran:\n%s", k, log.String())
		if k != opRollback { // a rollback has nothing to undo right after a SIGHUP
			require.Positive(t, c.succeeded, "%s never succeeded:\n%s", k, log.String())
		}
	}
	require.Positive(t, res.load.Calls)
	require.Positive(t, res.load.Checked)
	t.Logf("%s", log.String())
}

// The same seed gives the same schedule; another seed another one.
func TestChaosPlanSeeded(t *testing.T) {
	draw := func(seed uint64) []string {
		p := newChaosPlan(seed, nil)
		var ops []string
		for range 3 * len(opKinds) {
			op := p.next()
			ops = append(ops, op.String()+" after "+op.delay.String())
		}
		return ops
	}
	require.Equal(t, draw(7), draw(7))
	require.NotEqual(t, draw(7), draw(8))
	// Every kind once in each round.
	p := newChaosPlan(7, nil)
	seen := map[opKind]int{}
	for range len(opKinds) {
		seen[p.next().kind]++
	}
	for _, k := range opKinds {
		require.Equal(t, 1, seen[k], "%s in the first round", k)
	}
}
