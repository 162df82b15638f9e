package flags_test

import (
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/flags"
)

// TestReloadsDoNotGoBack: two reloads at once, the file rewritten
// between them. The reload that started after the rewrite read the new
// file and said so; the other, which read the old file before the rewrite,
// must not then put the old values back over the new ones. A set whose
// reloads read the file outside the writers' lock applied the stale file
// last: after both returned, the flag read on although the file said off.
func TestReloadsDoNotGoBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "flags.txt")
		writeFile(t, path, "fast-dial on\n")
		s := flags.New(quiet())
		_, err := s.LoadFile(path, "boot")
		require.NoError(t, err)

		second := make(chan error, 1)
		calls := 0
		flags.SetAfterRead(s, func() {
			calls++
			if calls > 1 {
				return
			}
			// The first reload has read "on". The operator rewrites the
			// file and reloads again, while the first is still going.
			writeFile(t, path, "fast-dial off\n")
			go func() {
				_, err := s.Reload("bob")
				second <- err
			}()
			synctest.Wait() // the second reload is done, or waits for the first
		})
		_, err = s.Reload("alice")
		require.NoError(t, err)
		require.NoError(t, <-second)

		require.False(t, s.Enabled("fast-dial", "m"), "the file says off and the last reload read it")
		st, ok := s.Get("fast-dial")
		require.True(t, ok)
		require.Equal(t, flags.Off, st.Value)
		require.Equal(t, "bob", st.Who)
	})
}

// TestLoadFileTooBig: a flag file over 1 MiB is refused, naming it, and
// changes nothing.
func TestLoadFileTooBig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.txt")
	writeFile(t, path, "a on\n"+strings.Repeat("#", 1<<20))
	s := flags.New(quiet())
	_, err := s.LoadFile(path, "ops")
	require.ErrorIs(t, err, flags.ErrBadFile)
	require.ErrorContains(t, err, path+": more than 1048576 bytes")
	require.Empty(t, s.List())
}
