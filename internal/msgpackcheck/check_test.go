package msgpackcheck_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
	"go.uber.org/goleak"

	"github.com/hotline-go/hotline/internal/msgpackcheck"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The full table and the fuzz test are fsm's (fsm/codec_test.go), which
// checks Check together with the decoder it guards.
func TestCheck(t *testing.T) {
	b, err := msgpack.Marshal(map[string]any{"k": []any{1, "two"}})
	require.NoError(t, err)
	require.NoError(t, msgpackcheck.Check(b))
	require.ErrorIs(t, msgpackcheck.Check(append(b, 0x01)), msgpackcheck.ErrTrailing)
	require.ErrorContains(t, msgpackcheck.Check([]byte{0xdd, 0xff, 0xff, 0xff, 0xff}), "length beyond the input")
}
