package exchange

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/examples/phoneswitch/phone"
)

// A plugin-hosted phone's reply arrives as generic msgpack; an in-process
// one's as a phone.Output: asOutput takes both.
func TestAsOutput(t *testing.T) {
	want := phone.Output{Lines: []string{"RINGBACK 2000"}, To: "2000", Signals: []phone.Signal{{Kind: phone.SigRing, Seq: 7, At: 1700000000000}}}
	got, err := asOutput(want)
	require.NoError(t, err)
	require.Equal(t, want, got)

	raw, err := msgpack.Marshal(want)
	require.NoError(t, err)
	var generic any
	require.NoError(t, msgpack.Unmarshal(raw, &generic))
	_, typed := generic.(phone.Output)
	require.False(t, typed)
	got, err = asOutput(generic)
	require.NoError(t, err)
	require.Equal(t, want, got)

	_, err = asOutput(map[string]any{"Lines": 3})
	require.Error(t, err)
}
