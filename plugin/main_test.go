package plugin_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// testPlugin is the path of the test plugin (internal/plugintest/plugin),
// built once by TestMain.
var testPlugin string

func TestMain(m *testing.M) {
	// Run with envFault set (by loadFaulty), the test binary is a plugin
	// whose code misbehaves as the mode says (faults_test.go).
	if mode, ok := os.LookupEnv(envFault); ok {
		serveFaulty(mode)
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "hlt-plugin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testPlugin = filepath.Join(dir, "testplugin")
	out, err := exec.Command("go", "build", "-o", testPlugin, "../internal/plugintest/plugin").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building the test plugin: %v\n%s", err, out)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if err := os.RemoveAll(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = max(code, 1)
		}
		os.Exit(code)
	}))
}
