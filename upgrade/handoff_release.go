package upgrade

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/internal/handoff"
)

// WithReleaseHandler ties the Handoff to the service's release handler.
// The old process hands over, with the machines, what rh knows of each
// machine name's versions: the current one, the permanent one, and the
// rollback history (the versions earlier upgrades replaced), so that
// [ReleaseHandler.Rollback] and [ReleaseHandler.Status] in the new process
// answer as they did in the old one. The new process's [Handoff.Receive]
// sets them in its own rh (registered with the same versions: a version it
// does not have is left out of the history and logged; a current or
// permanent version it does not have leaves its own), and restores every
// machine for which [WithCodes] gave no code under rh's current version
// of it, through rh's chain of UPGRADE (or downgrade) handlers from the
// machine's version: versions registered from a plugin directory
// ([ReleaseHandler.ScanPlugins]) need no code given. The machines are
// restored as any others: not started by rh, which the service can do
// with their snapshots ([ReleaseHandler.Restore]).
//
// It needs handoff format 2; without it, a Handoff writes format 1, which
// builds from before this option read. Default: none.
func WithReleaseHandler(rh *ReleaseHandler) HandoffOption {
	return func(c *handoffConfig) { c.release = rh }
}

// handoffReleases returns what h knows of each machine name's versions,
// by name.
func (h *ReleaseHandler) handoffReleases() []handoff.Release {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]handoff.Release, 0, len(h.machines))
	for _, name := range slices.Sorted(maps.Keys(h.machines)) {
		r := h.machines[name]
		if len(r.order) == 0 {
			continue
		}
		out = append(out, handoff.Release{Machine: name, Current: r.currentLocked(), Permanent: r.permanent, History: slices.Clone(r.history)})
	}
	return out
}

// takeReleases sets in h the versions the previous process's handler
// had, as far as h has those versions, and returns what it left out.
func (h *ReleaseHandler) takeReleases(rs []handoff.Release) (dropped []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, rl := range rs {
		r := h.machines[rl.Machine]
		if r == nil || len(r.order) == 0 {
			dropped = append(dropped, rl.Machine+" (no version registered)")
			continue
		}
		has := func(v string) bool {
			_, ok := r.versions[v]
			if !ok {
				dropped = append(dropped, rl.Machine+" "+v)
			}
			return ok
		}
		if has(rl.Current) {
			r.current = rl.Current
		}
		if has(rl.Permanent) {
			r.permanent = rl.Permanent
		}
		r.history = r.history[:0]
		for _, v := range rl.History {
			if has(v) {
				r.history = append(r.history, v)
			}
		}
	}
	return dropped
}

// releaseCode returns the code a machine of version from is restored
// under: h's current version of it, whose Upgrade reads data of from
// (through the chain of versions between them).
func (h *ReleaseHandler) releaseCode(ctx context.Context, machine, from string) (fsm.Code, error) {
	r, err := h.lookup(machine)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	cur := r.currentLocked()
	code, err := r.versions[cur].load(ctx)
	if err != nil || from == cur {
		return code, err
	}
	if _, ok := r.versions[from]; !ok {
		return nil, fmt.Errorf("%w: %s %s, of the machine handed over", ErrUnknownVersion, machine, from)
	}
	return h.pathCodeLocked(ctx, r, from, cur)
}
