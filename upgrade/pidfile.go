package upgrade

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// writePIDFile atomically replaces path with pid: it writes a temporary file
// in the same directory, syncs it and renames it over path, so a reader
// (systemd) sees the old PID or the new one, never a partial file.
func writePIDFile(path string, pid int) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("upgrade: write PID file: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("upgrade: write PID file: %w", err)
	}
	if _, err := f.WriteString(strconv.Itoa(pid) + "\n"); err != nil {
		return fmt.Errorf("upgrade: write PID file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("upgrade: write PID file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("upgrade: write PID file: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("upgrade: write PID file: %w", err)
	}
	return nil
}

// readPIDFile returns the PID that path names, or 0 and no error if there is
// no such file.
func readPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("upgrade: read PID file: %w", err)
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil {
		return 0, fmt.Errorf("upgrade: read PID file %s: %w", path, err)
	}
	return pid, nil
}

// removePIDFile removes path if it still names pid: a process that stops
// without handing over must not remove the file its successor wrote.
func removePIDFile(path string, pid int) error {
	got, err := readPIDFile(path)
	if err != nil || got != pid {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("upgrade: remove PID file: %w", err)
	}
	return nil
}
