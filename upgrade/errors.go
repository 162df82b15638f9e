package upgrade

import (
	"errors"
	"fmt"
	"strings"
)

// Errors returned by a [Restarter]. Each is wrapped with details; match them
// with [errors.Is].
var (
	// ErrNotReady is returned by [Restarter.Upgrade] before [Restarter.Ready]:
	// a process that cannot serve yet cannot hand its sockets over.
	ErrNotReady = errors.New("upgrade: process not ready")

	// ErrUpgradeInProgress is returned by [Restarter.Upgrade] while another
	// upgrade runs, and while the process this one replaced is still draining
	// (the next upgrade cannot start before it has exited). The request is
	// refused, not queued.
	ErrUpgradeInProgress = errors.New("upgrade: an upgrade is in progress")

	// ErrDraining is returned by [Restarter.Upgrade], [Restarter.Listen],
	// [Restarter.ListenPacket] and [Restarter.Drain] once this process has
	// handed over to a new one, has begun to drain, or was stopped.
	ErrDraining = errors.New("upgrade: process is draining")

	// ErrChildFailed is returned by [Restarter.Upgrade] when the new process
	// could not be started or exited before it called [Restarter.Ready]. This
	// process keeps serving.
	ErrChildFailed = errors.New("upgrade: new process failed before it was ready")

	// ErrChildTimeout is returned by [Restarter.Upgrade] when the new process
	// did not call [Restarter.Ready] within the upgrade timeout (see
	// [WithUpgradeTimeout]); it has been killed and this process keeps serving.
	ErrChildTimeout = errors.New("upgrade: new process not ready in time")

	// ErrDrainTimeout is returned by [Restarter.Drain] and [Restarter.Run]
	// when the drain hooks had not all returned by the drain deadline (see
	// [WithDrainTimeout]).
	ErrDrainTimeout = errors.New("upgrade: drain deadline passed")

	// ErrNotSupported is returned by [NewRestarter] on platforms where a
	// process cannot pass its sockets to a new one (Windows).
	ErrNotSupported = errors.New("upgrade: binary restart not supported on this platform")
)

// classify turns an error from tableflip v1.2.3's Upgrade, which are plain
// strings, into one of this package's sentinels. The strings are pinned by the
// tableflip version in go.mod; the process tests check the two that matter
// most (a child that exits, a child that times out).
func classify(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	switch {
	case msg == "process is not ready yet":
		return fmt.Errorf("%w: %s", ErrNotReady, msg)
	case msg == "upgrade in progress":
		return fmt.Errorf("%w: %s", ErrUpgradeInProgress, msg)
	case msg == "parent hasn't exited":
		return fmt.Errorf("%w: previous process still draining (%s)", ErrUpgradeInProgress, msg)
	case msg == "already upgraded", msg == "terminating":
		return fmt.Errorf("%w: %s", ErrDraining, msg)
	case strings.HasPrefix(msg, "can't start child"), strings.HasPrefix(msg, "child "):
		return fmt.Errorf("%w: %s", ErrChildFailed, msg)
	case strings.HasPrefix(msg, "new child ") && strings.HasSuffix(msg, "timed out"):
		return fmt.Errorf("%w: %s", ErrChildTimeout, msg)
	}
	return fmt.Errorf("upgrade: %w", err)
}
