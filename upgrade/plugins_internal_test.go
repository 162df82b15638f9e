package upgrade

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNaturalCompare(t *testing.T) {
	want := []string{"1", "2", "10", "v", "v1", "v1.2", "v1.10", "v2", "v02a", "v10", "v10a", "va"}
	got := slices.Clone(want)
	slices.Reverse(got)
	slices.SortStableFunc(got, naturalCompare)
	require.Equal(t, want, got)
	require.Zero(t, naturalCompare("v2", "v2"))
}

const sumA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func TestParsePluginSums(t *testing.T) {
	sums, err := parsePluginSums("SUMS", []byte("# made by make\n\n"+sumA+"  phone-v1\n"+sumA+" *phone-v2\n"))
	require.NoError(t, err)
	require.Len(t, sums, 2)
	require.Contains(t, sums, "phone-v1")
	require.Contains(t, sums, "phone-v2")

	bad := map[string]string{
		"one space":    sumA + " phone\n",
		"no name":      sumA + "  \n",
		"a path":       sumA + "  ../phone\n",
		"short sum":    "abcd  phone\n",
		"listed twice": sumA + "  phone\n" + sumA + "  phone\n",
		"only a sum":   sumA + "\n",
	}
	for name, in := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := parsePluginSums("SUMS", []byte(in))
			require.ErrorIs(t, err, ErrPluginDir)
			require.ErrorContains(t, err, "SUMS:")
		})
	}
}

func FuzzParsePluginSums(f *testing.F) {
	f.Add([]byte(sumA + "  phone-v1\n" + sumA + " *phone-v2\n"))
	f.Add([]byte("# c\n\n" + sumA + "  a b\n"))
	f.Add([]byte("x  y\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		sums, err := parsePluginSums("SUMS", b)
		if err != nil {
			require.ErrorIs(t, err, ErrPluginDir)
			return
		}
		for name, sum := range sums {
			require.NotEmpty(t, name)
			require.False(t, strings.Contains(name, "/"), name)
			require.Len(t, sum, 32)
		}
	})
}
