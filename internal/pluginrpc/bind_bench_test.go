package pluginrpc_test

// BenchmarkPluginEvent runs in the same invocation as the baselines of
// bench_test.go:
//
//	go test -run '^$' -bench . -benchmem ./internal/pluginrpc/

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/internal/pluginrpc"
	machine "github.com/hotline-go/hotline/internal/plugintest/machine"
	"github.com/hotline-go/hotline/plugin"
)

const benchMachines = pluginrpc.Callers

// BenchmarkPluginEvent is an event through a plugin-hosted machine: a
// call from the host's actor to the machine's code in the plugin and
// back, with the machine's data (about 200 bytes) in the request (about
// 290 bytes) and in the answer. "parallel-8" runs 8 machines at once,
// one caller each.
func BenchmarkPluginEvent(b *testing.B) {
	dir, err := os.MkdirTemp("", "hlb")
	require.NoError(b, err)
	b.Cleanup(func() { require.NoError(b, os.RemoveAll(dir)) })
	exe := filepath.Join(dir, "plugin")
	out, err := exec.Command("go", "build", "-o", exe, "../plugintest/plugin").CombinedOutput()
	require.NoError(b, err, "%s", out)
	sum, err := plugin.FileChecksum(exe)
	require.NoError(b, err)

	ctx := context.Background()
	p, err := plugin.Load(ctx, exe, sum, plugin.WithSocketDir(dir),
		plugin.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		plugin.WithConns(pluginrpc.BenchConns(b)))
	require.NoError(b, err)
	b.Cleanup(func() { require.NoError(b, p.Close()) })
	code, err := p.Code("v1")
	require.NoError(b, err)
	sys := actor.NewSystem()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		require.NoError(b, sys.Shutdown(ctx))
	})
	refs := make([]actor.Ref, benchMachines)
	for i := range refs {
		refs[i], err = fsm.Start(ctx, sys, code, fsm.WithID(fmt.Sprintf("machine-%04d", i)))
		require.NoError(b, err)
		// The data: about 200 bytes.
		_, err = fsm.Call(ctx, refs[i], machine.Pad{Blob: make([]byte, 180)})
		require.NoError(b, err)
	}
	inf, err := fsm.Inspect(ctx, refs[0])
	require.NoError(b, err)
	b.Logf("data %d bytes", len(inf.Data))
	ev := machine.Pad{Note: strings.Repeat("n", 60)}

	b.Run("1", func(b *testing.B) {
		b.ReportAllocs()
		defer pluginrpc.MeterCPU(b, p.PID())()
		for b.Loop() {
			if _, err := fsm.Call(ctx, refs[0], ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run(fmt.Sprintf("parallel-%d", benchMachines), func(b *testing.B) {
		b.ReportAllocs()
		defer pluginrpc.MeterCPU(b, p.PID())()
		pluginrpc.Parallel(b, func(i int) error {
			_, err := fsm.Call(ctx, refs[i], ev)
			return err
		})
	})
}
