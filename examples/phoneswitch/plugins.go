package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/hotline-go/hotline/examples/phoneswitch/phone"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/plugin"
)

// phonePlugins names the plugin binary of each version of the phone
// machine, oldest first, as the Makefile builds them into bin/plugins.
var phonePlugins = []struct{ version, binary string }{
	{"v1", "phone-v1"},
	{"v2", "phone-v2"},
}

// sumsFile is the file of the plugins' checksums in the plugins directory,
// in the format of sha256sum: "<hex>  <name>" a line.
const sumsFile = "SHA256SUMS"

// phoneVersions returns the versions of the phone machine, oldest first:
// those compiled into this binary (inProcess), or those of the plugins in
// dir, loaded through one Loader (with opts), whose checksums
// dir/SHA256SUMS gives.
// The returned close stops the plugins' processes: call it once no
// machine runs their code (after the System's shutdown); it is a no-op in
// process.
func phoneVersions(ctx context.Context, inProcess bool, dir string, log *slog.Logger, opts ...plugin.Option) ([]fsm.Code, func() error, error) {
	if inProcess {
		return []fsm.Code{phone.V1(), phone.V2()}, func() error { return nil }, nil
	}
	sums, err := readSums(filepath.Join(dir, sumsFile))
	if err != nil {
		return nil, nil, fmt.Errorf("plugins: %w", err)
	}
	l := plugin.NewLoader(append([]plugin.Option{plugin.WithLogger(log), plugin.WithMachine("phone")}, opts...)...)
	codes := make([]fsm.Code, 0, len(phonePlugins))
	for _, pp := range phonePlugins {
		sum, ok := sums[pp.binary]
		if !ok {
			return nil, nil, errors.Join(fmt.Errorf("plugins: %s: no checksum for %s", filepath.Join(dir, sumsFile), pp.binary), l.Close())
		}
		p, err := l.Load(ctx, filepath.Join(dir, pp.binary), sum, plugin.WithName(pp.binary))
		if err != nil {
			return nil, nil, errors.Join(fmt.Errorf("plugins: %w", err), l.Close())
		}
		c, err := p.Code(pp.version)
		if err != nil {
			return nil, nil, errors.Join(fmt.Errorf("plugins: %w", err), l.Close())
		}
		log.Info("loaded plugin", "binary", pp.binary, "version", pp.version, "plugin_pid", p.PID())
		codes = append(codes, c)
	}
	return codes, l.Close, nil
}

// readSums reads a file in the format of sha256sum's output: a checksum in
// hex, a space, a space or '*' (binary mode), and a file name, a line.
func readSums(path string) (map[string][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sums := make(map[string][]byte)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		hex, name, ok := strings.Cut(line, " ")
		name = strings.TrimPrefix(strings.TrimPrefix(name, " "), "*")
		if !ok || name == "" {
			return nil, fmt.Errorf("%s:%d: not \"<sha256>  <name>\"", path, n)
		}
		sum, err := plugin.ParseChecksum(hex)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		sums[filepath.Base(name)] = sum
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return sums, nil
}

// fileSum returns the SHA-256 of a file in hex, as sha256sum writes it.
func fileSum(path string) (string, error) {
	sum, err := plugin.FileChecksum(path)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(sum), nil
}
