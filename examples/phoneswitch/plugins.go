package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"time"

	"github.com/hotline-go/hotline/examples/phoneswitch/phone"
	"github.com/hotline-go/hotline/upgrade"
)

// pluginIdleStop is how long a phone version's plugin process runs on
// after the last phone on that version left it (plugin.WithIdleStop). A
// rollback or a canary's retreat soon after an upgrade then finds the old
// version's process running, instead of starting one while the phones
// are suspended; a binary restart's new process, which restores each
// phone by stopping the machine Receive restored and starting it again
// under the release handler, does not stop and start a process for each
// phone. A minute covers the demo's and an operator's upgrade, watch and
// rollback; an idle plugin process costs a few megabytes, not a thread.
const pluginIdleStop = time.Minute

// registerPhones registers the versions of the phone machine with rh:
// those compiled into this binary (inProcess), or those of the plugin
// binaries in dir, whose checksums dir/SHA256SUMS gives
// (upgrade.ReleaseHandler.ScanPlugins checks each binary and learns which
// versions it serves; a version's process starts when a phone first needs
// it). It returns the versions, oldest first.
func registerPhones(ctx context.Context, rh *upgrade.ReleaseHandler, inProcess bool, dir string, log *slog.Logger) ([]string, error) {
	if inProcess {
		if err := rh.Register(phone.V1()); err != nil {
			return nil, err
		}
		if err := rh.Register(phone.V2()); err != nil {
			return nil, err
		}
		return []string{"v1", "v2"}, nil
	}
	scan, err := rh.ScanPlugins(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("plugins: %w", err)
	}
	for _, pv := range scan.Added {
		log.Info("registered plugin", "binary", filepath.Base(pv.Path), "machine", pv.Machine, "version", pv.Version, "sha256", pv.Checksum)
	}
	var versions []string
	for _, ms := range rh.Status() {
		if ms.Machine != phone.Name {
			continue
		}
		for _, v := range ms.Versions {
			versions = append(versions, v.Version)
		}
	}
	if !slices.Contains(versions, "v1") {
		return nil, fmt.Errorf("plugins: %s: no plugin serves %s v1 (have %v)", dir, phone.Name, versions)
	}
	return versions, nil
}
