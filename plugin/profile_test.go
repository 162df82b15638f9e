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

// TestServeWritesProfiles: with HOTLINE_PLUGIN_CPUPROFILE or
// HOTLINE_PLUGIN_TRACE set in the host's environment, the plugin writes a
// CPU profile or an execution trace to the path with its pid appended,
// once it is stopped.
func TestServeWritesProfiles(t *testing.T) {
	for _, tc := range []struct {
		env   string
		check func(t *testing.T, b []byte)
	}{
		{plugin.EnvCPUProfile, func(t *testing.T, b []byte) {
			require.Greater(t, len(b), 2)
			require.Equal(t, []byte{0x1f, 0x8b}, b[:2], "a profile is gzipped protobuf")
		}},
		{plugin.EnvTrace, func(t *testing.T, b []byte) {
			require.True(t, strings.HasPrefix(string(b), "go 1."), "a runtime/trace file starts with its header: %q", b[:min(len(b), 16)])
		}},
	} {
		t.Run(tc.env, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "out")
			t.Setenv(tc.env, path)
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
			require.NoError(t, err, "the plugin's output")
			tc.check(t, b)
		})
	}
}
