package upgrade_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	tm "github.com/hotline-go/hotline/internal/plugintest/machine"
	"github.com/hotline-go/hotline/plugin"
	"github.com/hotline-go/hotline/upgrade"
)

// testPlugins are plugin binaries of the counter of internal/plugintest
// (machine "counter"), built by buildTestPlugins.
type testPlugins struct {
	v1, v2 string // serving v1 only, v2 only
}

// buildTestPlugins builds upgrade/internal/testplugin in its variants
// into dir.
func buildTestPlugins(t testing.TB, dir string) testPlugins {
	t.Helper()
	ps := testPlugins{v1: filepath.Join(dir, "counter-v1"), v2: filepath.Join(dir, "counter-v2")}
	for out, flags := range map[string]string{ps.v1: "-X main.serve=v1", ps.v2: "-X main.serve=v2"} {
		cmd := exec.Command("go", "build", "-ldflags", flags, "-o", out, "./internal/testplugin")
		b, err := cmd.CombinedOutput()
		require.NoError(t, err, "go build %s: %s", out, b)
	}
	return ps
}

// pluginDir makes a plugin directory holding copies of the binaries
// (name -> source) and a SHA256SUMS listing them.
func pluginDir(t testing.TB, bins map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range bins {
		copyFile(t, src, filepath.Join(dir, name))
	}
	writeSums(t, dir)
	return dir
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(dst, b, 0o755))
}

// writeSums writes dir/SHA256SUMS for every file in dir, as sha256sum
// does.
func writeSums(t testing.TB, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var sb strings.Builder
	for _, e := range ents {
		if e.Name() == upgrade.PluginSums {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		sum := sha256.Sum256(b)
		fmt.Fprintf(&sb, "%s  %s\n", hex.EncodeToString(sum[:]), e.Name())
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, upgrade.PluginSums), []byte(sb.String()), 0o644))
}

func fileSum(t testing.TB, path string) string {
	t.Helper()
	sum, err := plugin.FileChecksum(path)
	require.NoError(t, err)
	return hex.EncodeToString(sum)
}

func quietPlugins() upgrade.ReleaseOption {
	return upgrade.WithPluginOptions(plugin.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
}

// newPluginRelease returns a handler with no version registered, closed
// (with its plugins) at the end of the test.
func newPluginRelease(t testing.TB, opts ...upgrade.ReleaseOption) (*actor.System, *upgrade.ReleaseHandler) {
	t.Helper()
	sys := actor.NewSystem(actor.WithLogger(quiet()))
	h, err := upgrade.NewReleaseHandler(sys, append([]upgrade.ReleaseOption{upgrade.WithReleaseLogger(quiet()), quietPlugins()}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, sys.Shutdown(context.Background()))
		require.NoError(t, h.Close(context.Background()))
	})
	return sys, h
}

func versionsOf(t testing.TB, h *upgrade.ReleaseHandler) []upgrade.VersionStatus {
	t.Helper()
	return status(t, h).Versions
}

func pluginCount(t testing.TB, ref actor.Ref) tm.Count {
	t.Helper()
	v, err := fsm.Call(context.Background(), ref, tm.Get{})
	require.NoError(t, err)
	c, err := plugin.As[tm.Count](v)
	require.NoError(t, err)
	return c
}

// TestPluginDir registers plugin-hosted versions from a directory: real
// binaries, built by the test, checked against SHA256SUMS.
func TestPluginDir(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts plugin processes")
	}
	bins := buildTestPlugins(t, t.TempDir())

	t.Run("rescan makes a new version upgradeable", func(t *testing.T) {
		ctx := context.Background()
		_, h := newPluginRelease(t)
		dir := pluginDir(t, map[string]string{"counter-v1": bins.v1})
		scan, err := h.ScanPlugins(ctx, dir)
		require.NoError(t, err)
		v1 := upgrade.PluginVersion{Machine: "counter", Version: "v1", Path: filepath.Join(dir, "counter-v1"), Checksum: fileSum(t, bins.v1)}
		require.Equal(t, upgrade.PluginScan{Added: []upgrade.PluginVersion{v1}}, scan)
		require.Equal(t, []upgrade.VersionStatus{{Version: "v1", Current: true, Permanent: true, Source: "plugin", Path: v1.Path, Checksum: v1.Checksum}}, versionsOf(t, h))

		refs := make([]actor.Ref, 3)
		for i := range refs {
			refs[i], err = h.Start(ctx, "counter", fsm.WithID(fmt.Sprint("c", i)))
			require.NoError(t, err)
			require.NoError(t, fsm.Cast(refs[i], tm.Incr{By: i + 1}))
		}
		require.Equal(t, tm.Count{N: 3}, pluginCount(t, refs[2]))

		// A new version is built into the directory: rescan, upgrade.
		copyFile(t, bins.v2, filepath.Join(dir, "counter-v2"))
		writeSums(t, dir)
		scan, err = h.ScanPlugins(ctx, dir)
		require.NoError(t, err)
		v2 := upgrade.PluginVersion{Machine: "counter", Version: "v2", Path: filepath.Join(dir, "counter-v2"), Checksum: fileSum(t, bins.v2)}
		require.Equal(t, upgrade.PluginScan{Added: []upgrade.PluginVersion{v2}, Known: []upgrade.PluginVersion{v1}}, scan)

		rep, err := h.Upgrade(ctx, "counter", "v2")
		require.NoError(t, err)
		require.Equal(t, 3, rep.Changed)
		for i, ref := range refs {
			require.Equal(t, tm.Count{N: i + 1, State: "v2"}, pluginCount(t, ref))
			require.NoError(t, fsm.Cast(ref, tm.Incr{By: 1})) // v2 counts double
			require.Equal(t, tm.Count{N: i + 3, State: "v2"}, pluginCount(t, ref))
		}
		vs := versionsOf(t, h)
		require.Len(t, vs, 2)
		require.Equal(t, upgrade.VersionStatus{Version: "v2", Loaded: true, Machines: 3, Current: true, Source: "plugin", Path: v2.Path, Checksum: v2.Checksum}, vs[1])

		_, err = h.Rollback(ctx, "counter")
		require.NoError(t, err)
		for i, ref := range refs {
			require.Equal(t, tm.Count{N: i + 3}, pluginCount(t, ref))
		}
		// Nothing runs v2 and it is neither current nor permanent: its
		// process is stopped.
		require.False(t, versionsOf(t, h)[1].Loaded)
	})

	t.Run("next to an in-process version; comments, binary mode, directories and dotfiles", func(t *testing.T) {
		ctx := context.Background()
		_, h := newPluginRelease(t)
		require.NoError(t, h.Register(counterV1()))
		dir := t.TempDir()
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o700)) // directories are skipped
		require.NoError(t, os.WriteFile(filepath.Join(dir, ".swp"), nil, 0o600))
		copyFile(t, bins.v2, filepath.Join(dir, "counter-v2"))
		require.NoError(t, os.WriteFile(filepath.Join(dir, upgrade.PluginSums),
			[]byte("# built by make\n\n"+fileSum(t, bins.v2)+" *counter-v2\n"), 0o600)) // binary mode
		_, err := h.ScanPlugins(ctx, dir)
		require.NoError(t, err)
		vs := versionsOf(t, h)
		require.Equal(t, []string{"in-process", "plugin"}, []string{vs[0].Source, vs[1].Source})
		require.Empty(t, vs[0].Path)
	})

	// Bad directories: each has a good new binary (counter-v2) beside
	// what is wrong, and the handler has v1 in process. The scan fails
	// with an error naming the file, and registers nothing.
	bad := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  []string // in the error
		is    error
	}{
		{"no checksum file", func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, upgrade.PluginSums)))
		}, []string{upgrade.PluginSums, "no such file"}, nil},
		{"malformed checksum file", func(t *testing.T, dir string) {
			appendFile(t, filepath.Join(dir, upgrade.PluginSums), "0123  counter-v9\n")
		}, []string{upgrade.PluginSums + ":2", "not a SHA-256"}, plugin.ErrChecksum},
		{"malformed line", func(t *testing.T, dir string) {
			appendFile(t, filepath.Join(dir, upgrade.PluginSums), "justonefield\n")
		}, []string{upgrade.PluginSums + ":2", `not "<sha256>  <file>"`}, nil},
		{"binary not listed", func(t *testing.T, dir string) {
			copyFile(t, bins.v2, filepath.Join(dir, "counter-extra"))
		}, []string{"counter-extra: not listed in"}, nil},
		{"listed binary missing", func(t *testing.T, dir string) {
			appendFile(t, filepath.Join(dir, upgrade.PluginSums), fileSum(t, bins.v1)+"  counter-v3\n")
		}, []string{"counter-v3: listed in", "but not there"}, nil},
		{"checksum mismatch", func(t *testing.T, dir string) {
			copyFile(t, bins.v2, filepath.Join(dir, "counter-v3"))
			appendFile(t, filepath.Join(dir, upgrade.PluginSums), fileSum(t, bins.v1)+"  counter-v3\n")
		}, []string{"counter-v3"}, plugin.ErrChecksum},
		{"not a plugin", func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.sh"), []byte("#!/bin/sh\necho hello\n"), 0o755))
			writeSums(t, dir)
		}, []string{"notes.sh"}, plugin.ErrHandshake},
		{"two binaries serve one version", func(t *testing.T, dir string) {
			copyFile(t, bins.v2, filepath.Join(dir, "counter-v2-copy"))
			writeSums(t, dir)
		}, []string{"counter-v2", "serves counter v2, as", "counter-v2-copy"}, nil},
		{"a version registered already", func(t *testing.T, dir string) {
			copyFile(t, bins.v1, filepath.Join(dir, "counter-v1"))
			writeSums(t, dir)
		}, []string{"counter-v1: serves counter v1, registered already (in-process)"}, nil},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // mostly waiting for processes
			ctx := context.Background()
			_, h := newPluginRelease(t)
			require.NoError(t, h.Register(tm.V1()))
			before := versionsOf(t, h)
			dir := pluginDir(t, map[string]string{"counter-v2": bins.v2})
			tt.setup(t, dir)
			scan, err := h.ScanPlugins(ctx, dir)
			require.ErrorIs(t, err, upgrade.ErrPluginDir)
			if tt.is != nil {
				require.ErrorIs(t, err, tt.is)
			}
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
			require.Empty(t, scan.Added)
			require.Equal(t, before, versionsOf(t, h), "nothing registered")
			ref, err := h.Start(ctx, "counter")
			require.NoError(t, err, "v1 still serves")
			require.Equal(t, "v1", infos(t, []actor.Ref{ref})[0].Version)
		})
	}

	t.Run("a scanned binary whose checksum changed", func(t *testing.T) {
		ctx := context.Background()
		_, h := newPluginRelease(t)
		dir := pluginDir(t, map[string]string{"counter-v1": bins.v1})
		_, err := h.ScanPlugins(ctx, dir)
		require.NoError(t, err)
		before := versionsOf(t, h)
		copyFile(t, bins.v2, filepath.Join(dir, "counter-v1")) // another binary under the old name
		copyFile(t, bins.v2, filepath.Join(dir, "counter-v2"))
		writeSums(t, dir)
		_, err = h.ScanPlugins(ctx, dir)
		require.ErrorIs(t, err, upgrade.ErrPluginDir)
		require.ErrorContains(t, err, filepath.Join(dir, "counter-v1")+": its checksum in")
		require.ErrorContains(t, err, "must not change under its name")
		require.Equal(t, before, versionsOf(t, h))

		// The binary on disk is no longer the one registered: starting a
		// machine on it fails the checksum, before it runs.
		_, err = h.Start(ctx, "counter")
		require.ErrorIs(t, err, plugin.ErrChecksum)
	})
}

func appendFile(t testing.TB, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString(s)
	require.NoError(t, errors.Join(err, f.Close()))
}
