package upgrade

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/plugin"
)

// PluginSums is the name of the checksum file that
// [ReleaseHandler.ScanPlugins] reads in a plugin directory: the output of
// sha256sum, "<sha256 in hex>  <file>" a line.
const PluginSums = "SHA256SUMS"

// ErrPluginDir is wrapped by the errors of [ReleaseHandler.ScanPlugins]:
// each names the file that is wrong (the checksum file, with its line, or a
// binary) and why. Nothing of a scan that fails is registered.
var ErrPluginDir = errors.New("upgrade: bad plugin directory")

// WithPluginOptions sets the options of every plugin the handler loads
// (logger, call timeout, socket directory: see package plugin). Default:
// none. The handler adds [plugin.WithName] (the binary's file name) and
// [plugin.WithMachine].
func WithPluginOptions(opts ...plugin.Option) ReleaseOption {
	return func(c *releaseConfig) { c.pluginOpts = append(c.pluginOpts, opts...) }
}

// pluginState is what the handler knows of the plugin binaries it
// scanned. scan serialises scans; the rest is guarded by
// ReleaseHandler.mu.
type pluginState struct {
	scan   sync.Mutex
	loader *plugin.Loader           // made by the first scan
	binary map[string]*pluginBinary // by absolute path
}

// pluginBinary is one binary registered from a plugin directory.
type pluginBinary struct {
	path     string
	checksum []byte
	machine  string
	versions []string
}

// A PluginScan says what [ReleaseHandler.ScanPlugins] found.
type PluginScan struct {
	// Added are the versions the scan registered, in registration order.
	Added []PluginVersion `json:"added,omitempty"`
	// Known are the versions of binaries registered by an earlier scan,
	// unchanged.
	Known []PluginVersion `json:"known,omitempty"`
}

// A PluginVersion is one version served by a plugin binary.
type PluginVersion struct {
	Machine  string `json:"machine"`
	Version  string `json:"version"`
	Path     string `json:"path"`
	Checksum string `json:"checksum"` // SHA-256 in hex
}

// ScanPlugins registers the versions served by the plugin binaries in
// dir, whose checksums dir/SHA256SUMS lists ([PluginSums], in the format
// of sha256sum's output; blank lines and lines starting with '#' are
// ignored). Every other regular file in dir whose name does not start
// with '.' must be listed there and be a Hotline plugin: the handler
// starts each binary it has not seen (through [plugin.Load], which checks
// the checksum before it runs the binary), learns which machine and
// versions it serves, and stops it. A version's process starts again when
// a machine first needs it; the versions of one binary share one process.
//
// The new versions of a machine are registered after those it has (they
// are the newest), ordered among themselves by name, numbers compared as
// numbers ("v2" before "v10"). A binary registered by an earlier scan with
// the same checksum is skipped, so a rescan after building a new version
// into dir makes it available without restarting the host.
//
// It returns an error wrapping [ErrPluginDir] for a missing or malformed
// checksum file, a file not listed in it or listed and absent, a checksum
// that does not match ([plugin.ErrChecksum]), a file that is not a plugin
// ([plugin.ErrHandshake]), two binaries serving one version, a version
// registered already from elsewhere, or a binary scanned before whose
// checksum changed: every problem found, each naming its file. If it
// returns an error, it registered nothing.
func (h *ReleaseHandler) ScanPlugins(ctx context.Context, dir string) (PluginScan, error) {
	ps := &h.plugins
	ps.scan.Lock()
	defer ps.scan.Unlock()

	abs, err := filepath.Abs(dir)
	if err != nil {
		return PluginScan{}, fmt.Errorf("%w: %s: %w", ErrPluginDir, dir, err)
	}
	sumsPath := filepath.Join(abs, PluginSums)
	sums, err := readPluginSums(sumsPath)
	if err != nil {
		return PluginScan{}, err
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return PluginScan{}, fmt.Errorf("%w: %s: %w", ErrPluginDir, abs, err)
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return PluginScan{}, fmt.Errorf("%w: %s: the release handler is closed", ErrPluginDir, abs)
	}
	if ps.loader == nil {
		ps.loader = plugin.NewLoader(h.cfg.pluginOpts...)
		ps.binary = make(map[string]*pluginBinary)
	}
	loader := ps.loader
	known := make(map[string]pluginBinary, len(ps.binary))
	for p, b := range ps.binary {
		known[p] = *b
	}
	h.mu.Unlock()

	var errs []error
	var scan PluginScan
	var found []*pluginBinary
	listed := make(map[string]bool, len(sums))
	for _, e := range entries {
		name := e.Name()
		if name == PluginSums || strings.HasPrefix(name, ".") || e.IsDir() {
			continue
		}
		path := filepath.Join(abs, name)
		if !e.Type().IsRegular() {
			if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
				errs = append(errs, fmt.Errorf("%w: %s: not a regular file", ErrPluginDir, path))
				continue
			}
		}
		sum, ok := sums[name]
		if !ok {
			errs = append(errs, fmt.Errorf("%w: %s: not listed in %s", ErrPluginDir, path, sumsPath))
			continue
		}
		listed[name] = true
		if b, ok := known[path]; ok {
			if !bytes.Equal(b.checksum, sum) {
				errs = append(errs, fmt.Errorf("%w: %s: its checksum in %s is %x, not %x as when it was registered (serving %s %v): a version's code must not change under its name",
					ErrPluginDir, path, sumsPath, sum, b.checksum, b.machine, b.versions))
				continue
			}
			for _, v := range b.versions {
				scan.Known = append(scan.Known, PluginVersion{Machine: b.machine, Version: v, Path: path, Checksum: hex.EncodeToString(sum)})
			}
			continue
		}
		b, err := probePlugin(ctx, loader, path, sum)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %s: %w", ErrPluginDir, path, err))
			continue
		}
		found = append(found, b)
	}
	for name := range sums {
		if !listed[name] {
			errs = append(errs, fmt.Errorf("%w: %s: listed in %s but not there", ErrPluginDir, filepath.Join(abs, name), sumsPath))
		}
	}
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return PluginScan{}, fmt.Errorf("%w: %s: the release handler is closed", ErrPluginDir, abs)
	}
	// Conflicts among the new binaries, and with what is registered.
	seen := map[[2]string]string{}
	for _, b := range found {
		for _, v := range b.versions {
			key := [2]string{b.machine, v}
			if other, dup := seen[key]; dup {
				errs = append(errs, fmt.Errorf("%w: %s: serves %s %s, as %s does", ErrPluginDir, b.path, b.machine, v, other))
				continue
			}
			seen[key] = b.path
			if r := h.machines[b.machine]; r != nil {
				if old, dup := r.versions[v]; dup {
					from := old.origin.kind
					if old.origin.path != "" {
						from = old.origin.path
					}
					errs = append(errs, fmt.Errorf("%w: %s: serves %s %s, registered already (%s)", ErrPluginDir, b.path, b.machine, v, from))
				}
			}
		}
	}
	if len(errs) > 0 {
		return PluginScan{}, errors.Join(errs...)
	}
	// Register: per machine, the new versions by name.
	type added struct {
		b *pluginBinary
		v string
	}
	var adds []added
	for _, b := range found {
		for _, v := range b.versions {
			adds = append(adds, added{b, v})
		}
	}
	slices.SortStableFunc(adds, func(x, y added) int {
		return cmp.Or(cmp.Compare(x.b.machine, y.b.machine), naturalCompare(x.v, y.v))
	})
	for _, a := range adds {
		b, v := a.b, a.v
		sumHex := hex.EncodeToString(b.checksum)
		o := origin{kind: originPlugin, path: b.path, checksum: sumHex}
		err := h.registerLocked(b.machine, v, o, func(ctx context.Context) (fsm.Code, io.Closer, error) {
			return loadPluginVersion(ctx, loader, b, v)
		})
		if err != nil {
			panic(err) // unreachable: checked above, under the same lock
		}
		scan.Added = append(scan.Added, PluginVersion{Machine: b.machine, Version: v, Path: b.path, Checksum: sumHex})
	}
	for _, b := range found {
		ps.binary[b.path] = b
	}
	return scan, nil
}

// probePlugin starts the binary once to learn what it serves.
func probePlugin(ctx context.Context, l *plugin.Loader, path string, sum []byte) (*pluginBinary, error) {
	p, err := l.Load(ctx, path, sum, plugin.WithName(filepath.Base(path)))
	if err != nil {
		return nil, err
	}
	b := &pluginBinary{path: path, checksum: sum, machine: p.Machine(), versions: p.Versions()}
	if err := p.Close(); err != nil {
		return nil, fmt.Errorf("stop it after its handshake: %w", err)
	}
	if b.machine == "" || len(b.versions) == 0 {
		return nil, fmt.Errorf("serves no version (machine %q, versions %v)", b.machine, b.versions)
	}
	return b, nil
}

// loadPluginVersion starts (or shares) the binary's process and returns
// the code of version v; closing the Closer gives up the share.
func loadPluginVersion(ctx context.Context, l *plugin.Loader, b *pluginBinary, v string) (fsm.Code, io.Closer, error) {
	p, err := l.Load(ctx, b.path, b.checksum, plugin.WithName(filepath.Base(b.path)), plugin.WithMachine(b.machine))
	if err != nil {
		return nil, nil, err
	}
	c, err := p.Code(v)
	if err != nil {
		return nil, nil, errors.Join(err, p.Close())
	}
	return c, p, nil
}

// closePluginsLocked stops every plugin process the handler started.
func (h *ReleaseHandler) closePluginsLocked() error {
	if h.plugins.loader == nil {
		return nil
	}
	return h.plugins.loader.Close()
}

// readPluginSums reads a checksum file in sha256sum's format: a SHA-256
// in hex, a space, a space or '*' (binary mode), and a file name. Blank
// lines and lines starting with '#' are skipped. Names are taken as base
// names of files in the file's directory.
func readPluginSums(path string) (map[string][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrPluginDir, path, err)
	}
	return parsePluginSums(path, b)
}

// parsePluginSums parses the content b of the checksum file at path.
func parsePluginSums(path string, b []byte) (map[string][]byte, error) {
	sums := make(map[string][]byte)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		hexSum, name, ok := strings.Cut(line, " ")
		if ok && len(name) > 0 && (name[0] == ' ' || name[0] == '*') {
			name = name[1:]
		} else {
			ok = false
		}
		if !ok || name == "" || strings.ContainsRune(name, '/') {
			return nil, fmt.Errorf("%w: %s:%d: not \"<sha256>  <file>\": %q", ErrPluginDir, path, n, line)
		}
		sum, err := plugin.ParseChecksum(hexSum)
		if err != nil {
			return nil, fmt.Errorf("%w: %s:%d: %w", ErrPluginDir, path, n, err)
		}
		if _, dup := sums[name]; dup {
			return nil, fmt.Errorf("%w: %s:%d: %s listed twice", ErrPluginDir, path, n, name)
		}
		sums[name] = sum
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrPluginDir, path, err)
	}
	return sums, nil
}

// naturalCompare orders version names with digit runs compared as
// numbers: "v2" < "v10" < "v10a".
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digitRun(a), digitRun(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if c := cmp.Or(cmp.Compare(len(na), len(nb)), strings.Compare(na, nb)); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

func digitRun(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}
