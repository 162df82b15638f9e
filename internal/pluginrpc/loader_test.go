package pluginrpc

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLoader(t *testing.T) {
	exe, sum := testExe(t)
	dir := shortDir(t)
	l := NewLoader(WithSocketDir(dir), WithLogger(slog.New(slog.DiscardHandler)), withEnv(pluginEnvFor("echo")...))
	defer func() { require.NoError(t, l.Close()) }()
	ctx := context.Background()

	h1, err := l.Load(ctx, exe, sum)
	require.NoError(t, err)
	h2, err := l.Load(ctx, exe, sum)
	require.NoError(t, err)
	require.Same(t, h1.Client(), h2.Client(), "one process for both")
	require.Equal(t, 1, l.Loaded())
	pid := h1.Client().Stats().PID

	// The first release leaves the process to the other user.
	require.NoError(t, h1.Release())
	require.NoError(t, h1.Release()) // again: nothing
	out, err := h2.Client().Call(ctx, "k", "echo", []byte("still here"))
	require.NoError(t, err)
	require.Equal(t, "still here", string(out))

	// The last release stops it.
	require.NoError(t, h2.Release())
	requireGone(t, pid)
	require.Equal(t, 0, l.Loaded())
	requireEmptyDir(t, dir)
	_, err = h2.Client().Call(ctx, "k", "echo", nil)
	require.ErrorIs(t, err, ErrClosed)

	// A new Load starts a new process.
	h3, err := l.Load(ctx, exe, sum)
	require.NoError(t, err)
	require.NotEqual(t, pid, h3.Client().Stats().PID)

	// A failed Load keeps nothing.
	bad := bytes.Clone(sum)
	bad[0] ^= 1
	_, err = l.Load(ctx, exe, bad)
	require.ErrorIs(t, err, ErrChecksum)
	require.Equal(t, 1, l.Loaded())

	// Close stops what is left; Loads fail after it.
	pid3 := h3.Client().Stats().PID
	require.NoError(t, l.Close())
	requireGone(t, pid3)
	require.NoError(t, h3.Release())
	_, err = l.Load(ctx, exe, sum)
	require.ErrorIs(t, err, ErrClosed)
	requireEmptyDir(t, dir)
}
