package fsm

import (
	"io"

	"github.com/hotline-go/hotline/actor"
)

// Releasing instances.
//
// An Instance may hold something for as long as a machine runs it: a
// plugin-hosted version holds a share of its plugin process, which stops
// when no machine uses it any more. Such an Instance is also an
// [io.Closer], and the runtime calls its Close, once, when the machine
// drops it:
//
//   - the machine stops (Close is not called for a machine that was
//     killed with [actor.Kill], or stopped with a reason that wraps
//     [actor.Moved], as a binary restart stops a machine it handed over:
//     its instance is only dropped);
//   - a change of code replaced it, and can no longer be reverted (the
//     machine handled an event, or changed code again);
//   - [Revert] put the previous instance back;
//   - a change of code or a Start failed after the new instance was made.
//
// Close's error is ignored: the instance is gone either way. Instances
// that a caller makes with a Code's methods outside a machine are the
// caller's to close.

// closeInstance closes in if it is an io.Closer.
func closeInstance(in Instance) {
	if cl, ok := in.(io.Closer); ok {
		_ = cl.Close()
	}
}

// dropUndo forgets the last change of code, closing the instance it
// replaced.
func (c *core) dropUndo() {
	if u := c.undo; u != nil {
		c.undo = nil
		if u.in != c.in {
			closeInstance(u.in)
		}
	}
}

// release closes every instance the core holds; the machine has stopped.
func (c *core) release() {
	c.dropUndo()
	closeInstance(c.in)
}

// Terminate closes the machine's instances when it exits.
func (m *machine) Terminate(_ *actor.Context, _ error) { m.release() }
