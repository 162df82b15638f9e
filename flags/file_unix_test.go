//go:build unix

package flags_test

import (
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/flags"
)

// TestLoadFileNotRegular: a path that is a FIFO (or a device) is refused
// at once, naming the path. A set that read it as a file blocked forever
// in open or read, holding the writers' slot, so no Set could run.
func TestLoadFileNotRegular(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.fifo")
	require.NoError(t, syscall.Mkfifo(path, 0o600))
	s := flags.New(quiet())
	_, err := s.LoadFile(path, "ops")
	require.ErrorIs(t, err, flags.ErrBadFile)
	require.ErrorContains(t, err, path+": not a regular file")
	_, err = s.Set("after", flags.On, "ops")
	require.NoError(t, err, "the writers' slot is free")
}
