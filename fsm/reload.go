package fsm

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/hotline-go/hotline/actor"
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
	switch {
	case to.Machine() != from.Machine():
		return fail(fmt.Errorf("%w: %s", ErrWrongMachine, to.Machine()))
	case to.Version() != from.Version():
		return fail(fmt.Errorf("fsm: reload needs a code of version %s", from.Version()))
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
	u := &undo{code: c.code, in: c.in, postponed: c.postponed, payloads: make([]any, len(c.timers))}
	for i := range c.timers {
		u.payloads[i] = c.timers[i].payload
	}
	c.code, c.in, c.undo = to, in, u
	c.state = in.State()
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

// ChangeInPlace is [ChangeCode] in one request to the machine: the change
// runs between two of its events, and the machine waits for nothing but
// the change itself. ChangeCode suspends the machine, changes it and
// resumes it, three requests between which the caller may be descheduled
// while the machine waits; a rollout that moves machines one by one
// (a rolling upgrade) uses ChangeInPlace so that each machine is held only
// for its own change. It takes the options of ChangeCode and returns its
// errors; a machine suspended by its caller stays suspended. If ctx ends
// first, the change may or may not have been made ([Inspect] tells).
func ChangeInPlace(ctx context.Context, ref actor.Ref, to Code, opts ...ChangeOption) error {
	var cfg changeConfig
	for _, o := range opts {
		o(&cfg)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fsm: change code of %v: %w", ref, err)
	}
	// Inspect runs between two messages, suspended or not; the machine is
	// changed in place (it stays the same Behavior).
	return actor.Inspect(ctx, ref, func(b actor.Behavior) error {
		m, ok := b.(*machine)
		if !ok {
			return ErrNotMachine
		}
		if cfg.held != nil {
			t0 := time.Now()
			defer func() { *cfg.held = time.Since(t0) }()
		}
		if cfg.reload {
			return m.reload(ctx, to)
		}
		return m.change(ctx, to, cfg.down)
	})
}

// HeldFor makes [ChangeInPlace] store in *d how long the change held the
// machine (measured on the machine's side, from the start of the change to
// its end), once the call has returned. Other calls ignore it.
func HeldFor(d *time.Duration) ChangeOption {
	return func(c *changeConfig) { c.held = d }
}
