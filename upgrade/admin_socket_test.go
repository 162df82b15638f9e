package upgrade_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/upgrade"
)

// The admin socket appears at its path with its mode already set: it is
// made and chmod-ed in a private directory, then renamed into place. A
// stale file there is replaced; the socket and the private directory are
// gone when ServeAdmin returns.
func TestAdminSocketMode(t *testing.T) {
	tests := []struct {
		name  string
		opts  []upgrade.AdminOption
		mode  fs.FileMode
		stale bool // a file is at the path before
	}{
		{name: "default", mode: 0o600},
		{name: "group", opts: []upgrade.AdminOption{upgrade.WithSocketMode(0o660)}, mode: 0o660},
		{name: "stale", mode: 0o600, stale: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, h := newRelease(t)
			dir, err := os.MkdirTemp("", "hladm") // short: a socket path is at most ~100 bytes
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, os.RemoveAll(dir)) })
			path := filepath.Join(dir, "admin.sock")
			if tt.stale {
				require.NoError(t, os.WriteFile(path, []byte("stale"), 0o644))
			}

			renaming := make(chan struct{})
			// The hook runs on ServeAdmin's goroutine: assert, not require.
			hook := upgrade.WithBeforeRename(func(tmp string) {
				defer close(renaming)
				if !tt.stale {
					_, err := os.Lstat(path)
					assert.ErrorIs(t, err, fs.ErrNotExist, "nothing at the public path before the rename")
				}
				fi, err := os.Lstat(tmp)
				if assert.NoError(t, err) {
					assert.Equal(t, fs.ModeSocket, fi.Mode().Type())
					assert.Equal(t, tt.mode, fi.Mode().Perm(), "the mode is set before the rename")
				}
				di, err := os.Stat(filepath.Dir(tmp))
				if assert.NoError(t, err) {
					assert.Equal(t, fs.FileMode(0o700), di.Mode().Perm(), "made in a private directory")
				}
				assert.Equal(t, dir, filepath.Dir(filepath.Dir(tmp)), "next to the public path (same file system)")
			})

			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan error, 1)
			go func() { served <- h.ServeAdmin(ctx, path, append(tt.opts, hook)...) }()
			<-renaming
			// From here the socket is at path or about to be: each look
			// finds it with its mode, or (only before the rename) nothing.
			var c *upgrade.AdminClient
			require.Eventually(t, func() bool {
				fi, err := os.Lstat(path)
				if err != nil || fi.Mode().Type() != fs.ModeSocket {
					return false
				}
				if !assert.Equal(t, tt.mode, fi.Mode().Perm()) {
					return false
				}
				c, err = upgrade.DialAdmin(ctx, path)
				return err == nil
			}, relWait, relTick)
			st, err := c.Status(ctx)
			require.NoError(t, err)
			require.Len(t, st, 1)

			cancel()
			require.NoError(t, <-served)
			left, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Empty(t, left, "the socket and its private directory are removed")
		})
	}
}

// A path whose directory cannot hold the private directory is refused
// with an error naming the path; nothing is left behind.
func TestAdminSocketBadPath(t *testing.T) {
	_, h := newRelease(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "missing", "admin.sock")
	err := h.ServeAdmin(t.Context(), path)
	require.ErrorContains(t, err, "upgrade: admin socket:")
	require.ErrorContains(t, err, filepath.Join(dir, "missing"))

	long := dir // deep enough that the temporary name no longer fits
	for len(long) < 100 {
		long = filepath.Join(long, "d")
	}
	require.NoError(t, os.MkdirAll(long, 0o700))
	path = filepath.Join(long, "a")
	err = h.ServeAdmin(t.Context(), path)
	require.ErrorContains(t, err, "path too long")
	require.ErrorContains(t, err, path)
	left, err := os.ReadDir(long)
	require.NoError(t, err)
	require.Empty(t, left)
}
