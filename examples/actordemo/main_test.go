package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDemo(t *testing.T) {
	var out strings.Builder
	require.NoError(t, run(&out))
	require.Contains(t, out.String(), `says "v1: 3 digits"`)
	require.Contains(t, out.String(), `says "v1: 0 digits"`)
	require.Contains(t, out.String(), `says "v2: 4 digits"`)
	require.Contains(t, out.String(), "done: 0 actors left")
}
