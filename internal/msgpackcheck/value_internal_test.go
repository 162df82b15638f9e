package msgpackcheck

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// nestedKeys is depth maps, each the key of the next one out: {{{"\"": 1}: 1}: 1}.
func nestedKeys(depth int) []byte {
	var b []byte
	for range depth {
		b = append(b, 0x81)
	}
	b = append(b, 0xa1, '"')
	for range depth {
		b = append(b, 0x01)
	}
	return b
}

// keyText is the text of the one key of the map Value makes of b.
func keyText(t *testing.T, b []byte) string {
	t.Helper()
	v, err := Value(b)
	require.NoError(t, err)
	m, ok := v.(map[any]any)
	require.True(t, ok, "%T", v)
	require.Len(t, m, 1)
	for k := range m {
		ck, ok := k.(compositeKey)
		require.True(t, ok, "%T", k)
		return ck.text
	}
	return ""
}

// The text that stands for a map key that is a map grows with the depth
// of its nesting, not twice per level: quoted at each level, 20 levels
// made a text of megabytes, and 40 levels (80 bytes of input) a terabyte.
func TestValueNestedKeys(t *testing.T) {
	l10, l20 := len(keyText(t, nestedKeys(10))), len(keyText(t, nestedKeys(20)))
	require.Less(t, l20, 3*l10, "10 levels: %d bytes; 20 levels: %d", l10, l20)
	keyText(t, nestedKeys(MaxDepth)) // as deep as Check lets through

	// Two encodings of one key are one key, and other keys are others.
	require.Equal(t, keyText(t, nestedKeys(12)), keyText(t, nestedKeys(12)))
	require.NotEqual(t, keyText(t, nestedKeys(12)), keyText(t, nestedKeys(13)))
}
