package wire_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/internal/wire"
)

// TestMachineCallFlagsMalformed: a flags field that is not an array of
// str is an error naming the field, and leaves no flags behind.
func TestMachineCallFlagsMalformed(t *testing.T) {
	good := (&wire.MachineCall{Version: "v1", Flags: []string{"a"}}).Append(nil)
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"not an array", append(good[:len(good)-3:len(good)-3], 0xa1, 'a')},
		{"element not a str", append(good[:len(good)-3:len(good)-3], 0x91, 0x01)},
		{"too many elements", append(good[:len(good)-3:len(good)-3], 0xdd, 0, 0, 1, 0, 0xa1, 'a')},
		{"missing", good[:len(good)-3]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := wire.MachineCall{Flags: []string{"stale"}}
			err := c.Decode(tc.b)
			require.ErrorIs(t, err, wire.ErrMalformed)
			require.Contains(t, err.Error(), "flags")
			require.Nil(t, c.Flags)
		})
	}
	var c wire.MachineCall
	require.NoError(t, c.Decode(good))
	require.Equal(t, []string{"a"}, c.Flags)
}
