package plugin_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/fsm"
	machine "github.com/hotline-go/hotline/internal/plugintest/machine"
	"github.com/hotline-go/hotline/plugin"
)

// TestServeWritesCPUProfile: with HOTLINE_PLUGIN_CPUPROFILE set in the
// host's environment, the plugin writes a CPU profile to the path with its
// pid appended, once it is stopped.
func TestServeWritesCPUProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu")
	t.Setenv(plugin.EnvCPUProfile, path)
	sum, err := plugin.FileChecksum(testPlugin)
	require.NoError(t, err)
	p, err := plugin.Load(t.Context(), testPlugin, sum, quiet())
	require.NoError(t, err)
	c, err := p.Code("v1")
	require.NoError(t, err)
	in, err := c.New(t.Context(), "m")
	require.NoError(t, err)
	_, _, err = in.Handle(fsm.Event{Kind: fsm.KindCall, Payload: machine.Get{}})
	require.NoError(t, err)
	pid := p.PID()
	require.NoError(t, p.Close())
	requireGone(t, pid)

	b, err := os.ReadFile(path + "." + strconv.Itoa(pid))
	require.NoError(t, err, "the plugin's profile")
	require.Greater(t, len(b), 2)
	require.Equal(t, []byte{0x1f, 0x8b}, b[:2], "a profile is gzipped protobuf")
}

// TestServeWritesTrace: with HOTLINE_PLUGIN_TRACE set, the plugin writes an
// execution trace to the path with its pid appended, once it is stopped.
func TestServeWritesTrace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trace")
	t.Setenv(plugin.EnvTrace, path)
	sum, err := plugin.FileChecksum(testPlugin)
	require.NoError(t, err)
	p, err := plugin.Load(t.Context(), testPlugin, sum, quiet())
	require.NoError(t, err)
	c, err := p.Code("v1")
	require.NoError(t, err)
	in, err := c.New(t.Context(), "m")
	require.NoError(t, err)
	_, _, err = in.Handle(fsm.Event{Kind: fsm.KindCall, Payload: machine.Get{}})
	require.NoError(t, err)
	pid := p.PID()
	require.NoError(t, p.Close())
	requireGone(t, pid)

	b, err := os.ReadFile(path + "." + strconv.Itoa(pid))
	require.NoError(t, err, "the plugin's trace")
	require.True(t, strings.HasPrefix(string(b), "go 1."), "a runtime/trace file starts with its header: %q", b[:min(len(b), 16)])
}
