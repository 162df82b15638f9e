package upgrade_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/flags"
	"github.com/hotline-go/hotline/upgrade"
)

// TestAdminFlagsBadRequests: op "flags" refuses, naming the field, the
// fields of the machine ops. Flags are one set for every machine: a
// request that names a machine, a version or a selector would look scoped
// to those machines and change the flag for all of them. A get of a bad
// name says the name is bad, not that no such flag is set. Nothing changes.
func TestAdminFlagsBadRequests(t *testing.T) {
	ctx := t.Context()
	fl := flags.New(flags.WithLogger(quiet()))
	_, err := fl.Set("fast-dial", flags.Percent(10), "boot")
	require.NoError(t, err)
	_, h := newRelease(t, upgrade.WithFlags(fl))
	_, c, _ := serveAdmin(t, h)
	before := fl.List()

	set := func(r upgrade.AdminRequest) upgrade.AdminRequest {
		r.Op, r.Flag, r.Value = "flags", "fast-dial", "on"
		return r
	}
	for _, tc := range []struct {
		name string
		req  upgrade.AdminRequest
		want string
	}{
		{"machine", set(upgrade.AdminRequest{Machine: "gate"}), "upgrade: bad admin request: flags takes no machine"},
		{"to", set(upgrade.AdminRequest{To: "v2"}), "flags takes no to"},
		{"dry run", set(upgrade.AdminRequest{DryRun: true}), "flags takes no dry_run"},
		{"selector ids", set(upgrade.AdminRequest{Selector: upgrade.Selector{IDs: []string{"555-0100"}}}), "flags takes no selector"},
		{"selector tags", set(upgrade.AdminRequest{Selector: upgrade.Selector{Tags: map[string]string{"region": "eu"}}}), "flags takes no selector"},
		{"list with machine", upgrade.AdminRequest{Op: "flags", Machine: "gate"}, "flags takes no machine"},
		{"get bad name", upgrade.AdminRequest{Op: "flags", Flag: "fast dial"}, `upgrade: bad admin request: flags: bad flag name "fast dial"`},
		{"set bad name", upgrade.AdminRequest{Op: "flags", Flag: "fast;dial", Value: "on"}, `upgrade: bad admin request: flags: bad flag name "fast;dial"`},
		{"bad value", upgrade.AdminRequest{Op: "flags", Flag: "fast-dial", Value: "101%"}, `upgrade: bad admin request: flags: fast-dial: flags: bad value "101%"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Do(ctx, tc.req, nil)
			require.ErrorContains(t, err, tc.want)
			require.Equal(t, before, fl.List(), "a bad request changes nothing")
		})
	}
}
