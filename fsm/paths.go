package fsm

import "slices"

// Paths is implemented by a [Code] that declares which versions its
// UPGRADE row accepts data from and which versions its downgrade can
// produce data for. A release handler reads it to find a chain of
// versions (v1 -> v2 -> v3 where v3 cannot read v1) and to refuse an
// upgrade, before anything changes, for which some step has no handler.
//
// A nil slice means "not declared": the Code is taken to accept every
// version, and only running the handler (a dry run) tells. A [*Machine]
// implements Paths through [Machine.UpgradesFromVersions] and
// [Machine.DowngradesToVersions].
type Paths interface {
	// UpgradesFrom returns the versions whose data this version's UPGRADE
	// reads, or nil if it did not say.
	UpgradesFrom() []string
	// DowngradesTo returns the versions this version's downgrade writes
	// data for, or nil if it did not say.
	DowngradesTo() []string
}

// UpgradesFromVersions declares the versions whose data m's UPGRADE row
// ([Machine.OnUpgrade]) reads; see [Paths]. Calling it with no version
// declares that m upgrades from none (a first version). The default is
// undeclared: any version. It panics once m is in use.
func (m *Machine[D]) UpgradesFromVersions(versions ...string) {
	m.mutable()
	m.upFrom = append([]string{}, versions...)
}

// DowngradesToVersions declares the versions m's downgrade
// ([Machine.OnDowngrade]) writes data for; see [Paths]. Calling it with no
// version declares that m downgrades to none. The default is undeclared:
// any version. It panics once m is in use.
func (m *Machine[D]) DowngradesToVersions(versions ...string) {
	m.mutable()
	m.downTo = append([]string{}, versions...)
}

// UpgradesFrom returns what [Machine.UpgradesFromVersions] declared, or nil.
func (m *Machine[D]) UpgradesFrom() []string { return slices.Clone(m.upFrom) }

// DowngradesTo returns what [Machine.DowngradesToVersions] declared, or nil.
func (m *Machine[D]) DowngradesTo() []string { return slices.Clone(m.downTo) }
