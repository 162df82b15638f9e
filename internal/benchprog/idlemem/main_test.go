package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunReports(t *testing.T) {
	var out strings.Builder
	require.NoError(t, run(1000, &out))
	require.Contains(t, out.String(), "idle actors:     1000 (alive: 1000, goroutines: ")
	require.Contains(t, out.String(), "peak RSS:")
}
