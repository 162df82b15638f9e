package upgrade_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/upgrade"
)

// ScanPlugins refuses a directory whose SHA256SUMS does not list every
// binary in it (here, one built without rewriting the checksums), names
// the file, and registers nothing. With the checksums rewritten
// (`sha256sum * > SHA256SUMS`, or `make build`), a rescan registers the
// versions the binaries serve, and h.Upgrade can move machines to them.
func ExampleReleaseHandler_ScanPlugins() {
	ctx := context.Background()
	sys := actor.NewSystem()
	defer sys.Shutdown(ctx)
	h, err := upgrade.NewReleaseHandler(sys)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Close(ctx)

	dir, err := os.MkdirTemp("", "plugins")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	for name, content := range map[string]string{
		upgrade.PluginSums: "",
		"phone-v3":         "#!/bin/sh\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o755); err != nil {
			fmt.Println(err)
			return
		}
	}

	scan, err := h.ScanPlugins(ctx, dir)
	fmt.Println(errors.Is(err, upgrade.ErrPluginDir))
	fmt.Println(strings.Contains(err.Error(), filepath.Join(dir, "phone-v3")+": not listed in"))
	fmt.Println("added:", len(scan.Added), "machines known:", len(h.Status()))
	// Output:
	// true
	// true
	// added: 0 machines known: 0
}
