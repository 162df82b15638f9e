package upgrade

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPIDFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "svc.pid")

	pid, err := readPIDFile(path)
	require.NoError(t, err)
	assert.Zero(t, pid, "no file: no PID")

	require.NoError(t, writePIDFile(path, 1234))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "1234\n", string(b))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())

	// Replaced by rename: a reader holding the old file sees it whole.
	old, err := os.Open(path)
	require.NoError(t, err)
	defer old.Close()
	require.NoError(t, writePIDFile(path, 99))
	oldContent := make([]byte, 16)
	n, err := old.Read(oldContent)
	require.NoError(t, err)
	assert.Equal(t, "1234\n", string(oldContent[:n]))
	pid, err = readPIDFile(path)
	require.NoError(t, err)
	assert.Equal(t, 99, pid)

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file is left behind")

	require.NoError(t, removePIDFile(path, 1234))
	assert.FileExists(t, path, "a file naming another process stays")
	require.NoError(t, removePIDFile(path, 99))
	assert.NoFileExists(t, path)

	require.NoError(t, os.WriteFile(path, []byte("not a pid"), 0o644))
	_, err = readPIDFile(path)
	require.Error(t, err)

	require.Error(t, writePIDFile(filepath.Join(dir, "missing", "svc.pid"), 1))
}
