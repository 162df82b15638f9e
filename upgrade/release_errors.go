package upgrade

import (
	"errors"
	"fmt"
)

// Errors returned by a [ReleaseHandler]. Each is wrapped with details; match
// them with [errors.Is].
var (
	// ErrUnknownMachine is returned by [ReleaseHandler.Start],
	// [ReleaseHandler.Upgrade] and the other calls that name a machine no
	// version of which was registered.
	ErrUnknownMachine = errors.New("upgrade: unknown machine")

	// ErrUnknownVersion is returned by [ReleaseHandler.Upgrade],
	// [ReleaseHandler.DryRun] and [ReleaseHandler.Restore] for a version
	// that was not registered.
	ErrUnknownVersion = errors.New("upgrade: unknown version")

	// ErrDuplicateVersion is returned by [ReleaseHandler.Register] for a
	// version registered already.
	ErrDuplicateVersion = errors.New("upgrade: version registered twice")

	// ErrNoPath is returned by [ReleaseHandler.Upgrade] and
	// [ReleaseHandler.Rollback] before anything changed (pre-flight) when
	// no chain of declared UPGRADE (or downgrade) handlers leads from a
	// version some selected machine runs to the target, or back.
	ErrNoPath = errors.New("upgrade: no upgrade path")

	// ErrBusy is returned by [ReleaseHandler.Upgrade],
	// [ReleaseHandler.Rollback] and [ReleaseHandler.Confirm] while another
	// of them runs for the same machine name. The request is refused, not
	// queued, and nothing changed.
	ErrBusy = errors.New("upgrade: another upgrade of this machine is in progress")

	// ErrHandingOff is returned by [ReleaseHandler.Upgrade],
	// [ReleaseHandler.Rollback] and [ReleaseHandler.Confirm] while a binary
	// restart hands the machines over to a new process (a [Handoff] with
	// [WithReleaseHandler]): from before it pauses them until the old
	// process exits, or, if the handoff fails, until everything has
	// resumed. The request is refused, not queued, and nothing changed:
	// ask the new process, or again once the handoff has failed.
	ErrHandingOff = errors.New("upgrade: a binary restart is handing the machines over to a new process")

	// ErrNothingToRollBack is returned by [ReleaseHandler.Rollback] when
	// the machine has no earlier version to go back to.
	ErrNothingToRollBack = errors.New("upgrade: no earlier version to roll back to")

	// ErrRolledBack is returned (wrapped, with a *[MachineError]) by
	// [ReleaseHandler.Upgrade] when a machine's change of code failed in an
	// atomic upgrade: every machine is back on its old version with its
	// data exactly as before.
	ErrRolledBack = errors.New("upgrade: upgrade failed and was rolled back")

	// ErrRestarted is the exit reason of a machine stopped by an upgrade
	// under [PolicyRestart]; it is not a normal reason, so a supervisor
	// restarts the machine, on the new version.
	ErrRestarted = errors.New("upgrade: machine restarted for a new version")

	// ErrBadJournal is returned by [NewReleaseHandler] when the journal
	// cannot be read or rewritten (a line that does not decode is dropped
	// and reported by [ReleaseHandler.Recovered] instead), and by the
	// calls that write it ([ReleaseHandler.Upgrade],
	// [ReleaseHandler.Rollback], [ReleaseHandler.Confirm]) when it cannot
	// be written: before anything changed, but for a commit (see
	// ErrNotJournaled).
	ErrBadJournal = errors.New("upgrade: bad journal")

	// ErrNotJournaled is returned (wrapped, with the ErrBadJournal of the
	// write) by [ReleaseHandler.Upgrade] and [ReleaseHandler.Rollback]
	// when the move took effect (the machines run the new version, the
	// Report says "ok") but its commit could not be written to the
	// journal. The move is not undone: a restart decides the same version
	// without the commit as with it (an upgrade not confirmed comes back
	// on the permanent version either way; a rollback is resumed), and
	// only the outcome it reports differs. [ReleaseHandler.Confirm] writes
	// its record before it changes anything, and returns ErrBadJournal
	// alone, having changed nothing. A [Canary] rollout whose canaries
	// moved but were not journaled moves them back (ErrCanaryFailed and
	// ErrBadJournal, not this error); one whose rest moved but was not
	// journaled is promoted, with this error.
	ErrNotJournaled = errors.New("upgrade: the move took effect but its commit was not journaled")
)

// A MachineError names the machine whose change of code failed and why.
type MachineError struct {
	Machine string // the machine's name
	ID      string // its ID (fsm.WithID)
	Ref     string // its actor, as text
	From    string // the version it ran
	To      string // the version it was moved to
	Err     error  // the cause: often an *fsm.UpgradeError
}

func (e *MachineError) Error() string {
	return fmt.Sprintf("upgrade: %s %q (%s) %s -> %s: %v", e.Machine, e.ID, e.Ref, e.From, e.To, e.Err)
}

func (e *MachineError) Unwrap() error { return e.Err }
