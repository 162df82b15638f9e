package upgrade_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/hotline-go/hotline/upgrade"
	"github.com/hotline-go/hotline/upgrade/internal/testserver"
)

// TestMain runs the test binary as the server (or its plugin) when the
// process tests start it that way, and the tests otherwise.
func TestMain(m *testing.M) {
	if code, ran := testserver.Main(); ran {
		os.Exit(code)
	}
	if code, ran := upgrade.HandoffServerMain(); ran {
		os.Exit(code)
	}
	goleak.VerifyTestMain(m)
}
