package upgrade

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDecodeAdminRequest(t *testing.T) {
	tests := []struct {
		in   string
		ok   bool
		want AdminRequest
	}{
		{in: `{"op":"status"}`, ok: true, want: AdminRequest{Op: "status"}},
		{in: `{"op":"upgrade","machine":"m","to":"v2","selector":{"tags":{"cohort":"beta"}}}`, ok: true,
			want: AdminRequest{Op: "upgrade", Machine: "m", To: "v2", Selector: Selector{Tags: map[string]string{"cohort": "beta"}}}},
		{in: `{"op":"upgrade","machine":"m"}`},
		{in: `{"op":"rollback"}`},
		{in: `{"op":"status","extra":1}`},
		{in: `{"op":"nope"}`},
		{in: `not json`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := decodeAdminRequest([]byte(tt.in))
			if !tt.ok {
				require.ErrorIs(t, err, ErrBadRequest)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func FuzzDecodeAdminRequest(f *testing.F) {
	for _, s := range []string{`{"op":"status"}`, `{"op":"upgrade","machine":"m","to":"v2","dry_run":true}`, `{"op":"confirm","machine":"m"}`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := decodeAdminRequest(b)
		if err != nil {
			require.ErrorIs(t, err, ErrBadRequest)
			return
		}
		require.Contains(t, []string{"status", "upgrade", "dry-run", "rollback", "confirm"}, req.Op)
	})
}
