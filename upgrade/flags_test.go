package upgrade_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/flags"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/upgrade"
)

// Gate asks a gate machine whether a flag is on.
type Gate struct{ Flag string }

// gate returns a version of a machine whose handler reads flags and
// replies "<version>:<on>".
func gate(version string) *fsm.Machine[int] {
	m := fsm.Define("gate", version, "idle", 0)
	fsm.OnAnyFlags(m, func(g Gate, n int, f fsm.Flags) fsm.Result[int] {
		on := "off"
		if f.On(g.Flag) {
			on = "on"
		}
		return fsm.Keep(n+1, fsm.Reply(version+":"+on))
	})
	return m
}

// serveAdmin serves h's admin API on a socket in a short temporary
// directory (a socket path is at most ~100 bytes) until the test ends, and
// returns the context it serves under, a client and the socket's path.
func serveAdmin(t *testing.T, h *upgrade.ReleaseHandler) (context.Context, *upgrade.AdminClient, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir, err := os.MkdirTemp("", "hladmin")
	require.NoError(t, err)
	path := filepath.Join(dir, "admin.sock")
	served := make(chan error, 1)
	go func() { served <- h.ServeAdmin(ctx, path) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-served)
		require.NoError(t, os.RemoveAll(dir))
	})
	var c *upgrade.AdminClient
	require.Eventually(t, func() bool {
		c, err = upgrade.DialAdmin(ctx, path)
		return err == nil
	}, relWait, relTick)
	return ctx, c, path
}

func TestAdminFlags(t *testing.T) {
	ctx := t.Context()
	var logs bytes.Buffer
	fl := flags.New(flags.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	_, h := newRelease(t, upgrade.WithFlags(fl))
	require.Same(t, fl, h.Flags())
	require.NoError(t, h.Register(gate("v1")))
	require.NoError(t, h.Register(gate("v2")))
	ref, err := h.Start(ctx, "gate", fsm.WithID("555-0100"))
	require.NoError(t, err)
	ask := func() any {
		t.Helper()
		v, err := fsm.Call(ctx, ref, Gate{"fast-dial"})
		require.NoError(t, err)
		return v
	}
	_, c, _ := serveAdmin(t, h)

	list, err := c.Flags(ctx)
	require.NoError(t, err)
	require.Empty(t, list)
	require.Equal(t, "v1:off", ask())

	st, err := c.SetFlag(ctx, "fast-dial", "on", "alice")
	require.NoError(t, err)
	require.Equal(t, "fast-dial", st.Flag)
	require.Equal(t, flags.On, st.Value)
	require.Equal(t, flags.Off, st.Old)
	require.Equal(t, "alice", st.Who)
	require.False(t, st.When.IsZero())
	require.Equal(t, "v1:on", ask(), "the machine sees the change at its next event")

	// The flag survives an upgrade of the machine: v2 reads it too.
	_, err = h.Upgrade(ctx, "gate", "v2")
	require.NoError(t, err)
	require.Equal(t, "v2:on", ask())

	b := flags.Bucket("fast-dial", "555-0100")
	_, err = c.SetFlag(ctx, "fast-dial", flags.Percent(b).String(), "bob")
	require.NoError(t, err)
	require.Equal(t, "v2:off", ask(), "at its bucket")
	_, err = c.Do(ctx, upgrade.AdminRequest{Op: "flags", Flag: "fast-dial", Value: flags.Percent(b + 1).String()}, nil)
	require.NoError(t, err)
	require.Equal(t, "v2:on", ask(), "one above its bucket")

	one, err := c.Do(ctx, upgrade.AdminRequest{Op: "flags", Flag: "fast-dial"}, nil)
	require.NoError(t, err)
	require.Len(t, one.Flags, 1)
	require.Equal(t, "admin", one.Flags[0].Who, "who defaults to admin")
	require.Equal(t, flags.Percent(b), one.Flags[0].Old)

	// Bad requests: a clear error naming what was wrong, nothing changed.
	for _, tc := range []struct {
		req  upgrade.AdminRequest
		want string
	}{
		{upgrade.AdminRequest{Op: "flags", Flag: "fast-dial", Value: "lots"}, `bad value "lots"`},
		{upgrade.AdminRequest{Op: "flags", Flag: "fast dial", Value: "on"}, `bad flag name "fast dial"`},
		{upgrade.AdminRequest{Op: "flags", Value: "on"}, `value "on" needs flag`},
		{upgrade.AdminRequest{Op: "flags", Reload: true, Flag: "x"}, "reload takes no flag"},
		{upgrade.AdminRequest{Op: "flags", Flag: "nope"}, `unknown flag "nope"`},
		{upgrade.AdminRequest{Op: "flags", Reload: true}, "no flag file loaded"},
	} {
		_, err := c.Do(ctx, tc.req, nil)
		require.ErrorContains(t, err, tc.want)
	}
	list, err = c.Flags(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, flags.Percent(b+1), list[0].Value)

	// The flag file, reloaded from the admin API.
	path := filepath.Join(t.TempDir(), "flags.txt")
	require.NoError(t, os.WriteFile(path, []byte("fast-dial off\nnew-tone 50%\n"), 0o600))
	_, err = fl.LoadFile(path, "boot")
	require.NoError(t, err)
	require.Equal(t, "v2:off", ask())
	require.NoError(t, os.WriteFile(path, []byte("fast-dial on\nnew-tone 50%\n"), 0o600))
	changes, err := c.ReloadFlags(ctx, "ops")
	require.NoError(t, err)
	require.Len(t, changes, 1)
	require.Equal(t, "ops", changes[0].Who)
	require.Equal(t, "v2:on", ask())
	require.NoError(t, os.WriteFile(path, []byte("fast-dial maybe\n"), 0o600))
	_, err = c.ReloadFlags(ctx, "ops")
	require.ErrorContains(t, err, path+":1:")
	require.Equal(t, "v2:on", ask(), "a bad file changes nothing")

	// Every change was logged, with who, old and new.
	var recs []map[string]any
	for l := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &rec))
		recs = append(recs, rec)
	}
	require.Equal(t, "flags: set", recs[0]["msg"])
	require.Equal(t, "alice", recs[0]["who"])
	require.Equal(t, "off", recs[0]["old"])
	require.Equal(t, "on", recs[0]["new"])
	var whos []any
	for _, r := range recs {
		whos = append(whos, r["who"])
	}
	require.Equal(t, []any{"alice", "bob", "admin", "boot", "boot", "ops"}, whos)
}

func TestAdminFlagsWithoutSet(t *testing.T) {
	_, h := newRelease(t)
	_, c, _ := serveAdmin(t, h)
	_, err := c.Flags(t.Context())
	require.ErrorContains(t, err, "no feature flags")
	require.Nil(t, h.Flags())
}

// The caller's own fsm.WithFlags wins over the handler's.
func TestStartFlagsOverride(t *testing.T) {
	quietFlags := flags.WithLogger(quiet())
	fl, mine := flags.New(quietFlags), flags.New(quietFlags)
	_, err := mine.Set("fast-dial", flags.On, "test")
	require.NoError(t, err)
	_, h := newRelease(t, upgrade.WithFlags(fl))
	require.NoError(t, h.Register(gate("v1")))
	ref, err := h.Start(t.Context(), "gate", fsm.WithFlags(mine))
	require.NoError(t, err)
	v, err := fsm.Call(t.Context(), ref, Gate{"fast-dial"})
	require.NoError(t, err)
	require.Equal(t, "v1:on", v)
}
