package upgrade

import (
	"context"
	"io"

	"github.com/hotline-go/hotline/fsm"
)

// A tapCode wraps one version's code for one machine, so that the release
// handler sees what the machine's handlers return: the canary's watch of
// error replies and the shadow's comparison. It has the wrapped version's
// machine and version names, so the runtime, [fsm.Inspect], a handoff and
// later upgrades see the version itself; its instances encode the data as
// the version does. A machine is moved onto a tapCode (and off it) with
// [fsm.Reload], or by an ordinary change of code to it from another version.
type tapCode struct {
	fsm.Code
	id   string // the machine's ID, for samples
	tap  tap
	peer fsm.Code // the shadow's code: the step to the shadow version
}

// A tap is told of every event a tapped machine handles, on the machine's
// goroutine, before the handler runs and after it returned. It must not
// block.
type tap interface {
	before(ti *tapInstance, ev fsm.Event)
	handled(ti *tapInstance, ev fsm.Event, state string, acts []fsm.Action, err error)
}

// tapInstance is the instance of a tapCode: the version's own instance,
// and what the tap keeps per machine.
type tapInstance struct {
	fsm.Instance
	c      *tapCode
	shadow fsm.Instance // the shadow's instance (shadowRun), nil until needed
	stale  bool         // the live data moved on without the shadow
	flags  fsm.Flags    // the machine's flags, for the shadow's instance too
}

// UseFlags gives the version's own instance the machine's flags (the
// runtime gives them to the instance it holds, the tapInstance), and keeps
// them for the shadow's instance: the same source and machine ID, so the
// same bucket of a percentage.
func (ti *tapInstance) UseFlags(f fsm.Flags) {
	ti.flags = f
	if u, ok := ti.Instance.(fsm.FlagUser); ok {
		u.UseFlags(f)
	}
}

// wrap makes the tapInstance of in.
func (c *tapCode) wrap(in fsm.Instance, err error) (fsm.Instance, error) {
	if err != nil {
		return nil, err
	}
	return &tapInstance{Instance: in, c: c}, nil
}

func (c *tapCode) New(ctx context.Context, id string) (fsm.Instance, error) {
	in, err := c.Code.New(ctx, id)
	return c.wrap(in, err)
}

func (c *tapCode) Load(ctx context.Context, state string, data []byte) (fsm.Instance, error) {
	in, err := c.Code.Load(ctx, state, data)
	return c.wrap(in, err)
}

func (c *tapCode) Upgrade(ctx context.Context, from, state string, data []byte) (fsm.Instance, error) {
	in, err := c.Code.Upgrade(ctx, from, state, data)
	return c.wrap(in, err)
}

func (c *tapCode) Downgrade(ctx context.Context, to string, in fsm.Instance) (string, []byte, error) {
	return c.Code.Downgrade(ctx, to, untap(in))
}

// untap returns the version's own instance of in.
func untap(in fsm.Instance) fsm.Instance {
	if ti, ok := in.(*tapInstance); ok {
		return ti.Instance
	}
	return in
}

// untapCode returns the version's own code of c.
func untapCode(c fsm.Code) fsm.Code {
	if tc, ok := c.(*tapCode); ok {
		return tc.Code
	}
	return c
}

// Close closes the version's own instance and the shadow's, when they
// hold something (a share of a plugin's process): the runtime closes the
// instance it drops, and that is the tapInstance.
func (ti *tapInstance) Close() error {
	ti.dropShadow()
	return closeIn(ti.Instance)
}

// dropShadow closes and forgets the shadow's instance, if any.
func (ti *tapInstance) dropShadow() {
	if ti.shadow != nil {
		_ = closeIn(ti.shadow)
		ti.shadow = nil
	}
}

// closeIn closes in if it is an io.Closer.
func closeIn(in fsm.Instance) error {
	if c, ok := in.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

func (ti *tapInstance) Handle(ev fsm.Event) (string, []fsm.Action, error) {
	ti.c.tap.before(ti, ev)
	state, acts, err := ti.Instance.Handle(ev)
	ti.c.tap.handled(ti, ev, state, acts, err)
	return state, acts, err
}
