package flags

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// maxFile bounds the size of a flag file, in bytes.
const maxFile = 1 << 20

// LoadFile reads the flag file at path (see the package doc for its
// format) and sets every flag it names to its value, in one change: no
// read sees half of the file. Each flag whose value changes is recorded and
// logged as [Set.Set] does, with who. Flags the file does not name are
// left as they are. It returns the changes made. A file that cannot be
// read, or that has a bad line, is an error wrapping [ErrBadFile] that
// names the file and the line, and changes nothing. The Set remembers path
// for [Set.Reload].
func (s *Set) LoadFile(path, who string) ([]Status, error) {
	if who == "" {
		return nil, fmt.Errorf("%w: load %s", ErrNoWho, path)
	}
	s.lock()
	defer s.unlock()
	return s.loadLocked(path, who)
}

// Reload reads again the file of the last [Set.LoadFile] that succeeded,
// as LoadFile does. Its errors are LoadFile's, and [ErrNoFile].
func (s *Set) Reload(who string) ([]Status, error) {
	if who == "" {
		return nil, fmt.Errorf("%w: reload", ErrNoWho)
	}
	s.lock()
	defer s.unlock()
	if s.file == "" {
		return nil, ErrNoFile
	}
	return s.loadLocked(s.file, who)
}

// loadLocked reads, parses and applies the file at path. It runs in the
// writers' slot from the read to the swap: a load that read the file
// before another load read it cannot apply its older text after that one.
func (s *Set) loadLocked(path, who string) ([]Status, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) > maxFile {
		return nil, fmt.Errorf("%w: %s: more than %d bytes", ErrBadFile, path, maxFile)
	}
	set, err := parseFile(path, string(b))
	if err != nil {
		return nil, err
	}
	if s.afterRead != nil {
		s.afterRead()
	}
	s.file = path
	return s.applyLocked(set, who, true), nil
}

// readFile reads a regular file of at most maxFile+1 bytes. A FIFO or a
// device is refused before it is opened: reading one could block forever,
// or never end, while the caller holds the writers' slot.
func readFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadFile, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s: not a regular file (%s)", ErrBadFile, path, fi.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadFile, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadFile, err)
	}
	return b, nil
}

// parseFile parses a flag file's text; path is for errors.
func parseFile(path, text string) ([]setting, error) {
	var set []setting
	first := map[string]int{}
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		fail := func(format string, args ...any) error {
			return fmt.Errorf("%w: %s:%d: %s", ErrBadFile, path, n, fmt.Sprintf(format, args...))
		}
		failWith := func(name string, err error) error {
			return fmt.Errorf("%w: %s:%d: flag %q: %w", ErrBadFile, path, n, name, err)
		}
		if c, _, ok := strings.Cut(line, "#"); ok {
			line = c
		}
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
			continue
		case len(f) != 2:
			return nil, fail("want a flag name and a value, have %d fields %q", len(f), strings.Join(f, " "))
		}
		if err := checkName(f[0]); err != nil {
			return nil, failWith(f[0], err)
		}
		v, err := ParseValue(f[1])
		if err != nil {
			return nil, failWith(f[0], err)
		}
		if at, dup := first[f[0]]; dup {
			return nil, fail("flag %s given twice (first on line %d)", f[0], at)
		}
		first[f[0]] = n
		set = append(set, setting{name: f[0], v: v})
	}
	return set, nil
}
