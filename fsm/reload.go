package fsm

import (
	"context"
	"maps"
)

// This file holds two small seams for code that wraps a version of a
// machine's code (a release handler's shadow or canary watch): reloading a
// machine onto another Code value of the same version, and reading the
// identity a machine will start with.

// Reload makes a change of code load the running version's data into to,
// another Code value of the same machine and version (a wrapper that
// observes the version's events, say), instead of running UPGRADE: to.Load
// gets the state and the data as the running instance encodes them. The
// held events are kept as they are (they are already in that version's
// format). Without Reload, a change to the same version fails with
// ErrSameVersion; with it, a change to another version fails. [Revert] undoes it as any change.
func Reload() ChangeOption {
	return func(c *changeConfig) { c.reload = true }
}

// reload is change for Reload.
func (c *core) reload(ctx context.Context, to Code) error {
	from := c.code
	fail := func(err error) error {
		return &UpgradeError{Machine: from.Machine(), ID: c.id, From: from.Version(), To: to.Version(), Err: err}
	}
	if err := checkChange(from, to, true); err != nil {
		return fail(err)
	}
	var in Instance
	err := protect(func() error {
		data, err := c.in.Encode()
		if err == nil {
			in, err = to.Load(ctx, c.in.State(), data)
		}
		return err
	})
	if err != nil {
		return fail(err)
	}
	c.dropUndo()    // an earlier change without an event since can no longer be undone
	c.bindFlags(in) // as a change of code does: the reloaded instance reads the machine's flags
	c.install(to, in, c.postponed, nil, &undo{payloads: make([]any, len(c.timers))})
	return nil
}

// StartIdentity returns the ID and the tags that a machine started with
// opts would have ([WithID], [WithTags]), so that a caller can choose the
// code to start it with by them. The tags are a copy.
func StartIdentity(opts ...StartOption) (id string, tags map[string]string) {
	var cfg startConfig
	for _, o := range opts {
		o(&cfg)
	}
	return cfg.id, maps.Clone(cfg.tags)
}
