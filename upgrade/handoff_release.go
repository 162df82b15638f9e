package upgrade

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

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
// (through the chain of versions between them). A version h lacks is
// read by the newest version up to the current one that declares reading
// it ([fsm.Paths]: declared, not undeclared, since from is outside h's
// graph), then along the chain from there. With no such chain it returns
// an error wrapping ErrNoPath that names the versions h has.
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
	noPath := func(err error) error {
		return fmt.Errorf("%s %s, of the machine handed over: %w; this binary has %s %s", machine, from, err, machine, h.describeLocked(ctx, r))
	}
	if _, ok := r.versions[from]; ok {
		code, err := h.pathCodeLocked(ctx, r, from, cur)
		if errors.Is(err, ErrNoPath) {
			err = noPath(err)
		}
		return code, err
	}
	for i := slices.Index(r.order, cur); i >= 0; i-- {
		v := r.versions[r.order[i]]
		if _, err := v.load(ctx); err != nil {
			return nil, err
		}
		if v.paths == nil || v.paths.UpgradesFrom() == nil || !slices.Contains(v.paths.UpgradesFrom(), from) {
			continue
		}
		path, err := h.planLocked(ctx, r, v.name, cur)
		if errors.Is(err, ErrNoPath) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if len(path) == 1 {
			return code, nil // cur reads from itself
		}
		codes := []fsm.Code{foreignVersion{Code: v.code, version: from}}
		for _, vn := range path {
			codes = append(codes, r.versions[vn].code)
		}
		return &chain{Code: code, path: codes, up: true}, nil
	}
	return nil, noPath(fmt.Errorf("%w: no version up to %s declares upgrading from %s", ErrNoPath, cur, from))
}

// describeLocked names r's versions with the versions each upgrades from,
// as describeCodes does, loading them to read it.
func (h *ReleaseHandler) describeLocked(ctx context.Context, r *release) string {
	parts := make([]string, len(r.order))
	for i, vn := range r.order {
		v := r.versions[vn]
		parts[i] = vn + " (not loaded)"
		if _, err := v.load(ctx); err != nil {
			continue
		}
		var from []string
		if v.paths != nil {
			from = v.paths.UpgradesFrom()
		}
		parts[i] = vn + " (upgrades from " + describeFrom(from) + ")"
	}
	return strings.Join(parts, ", ")
}

// foreignVersion stands, at the head of a chain, for a version of the
// machine this binary lacks: only its Version is read.
type foreignVersion struct {
	fsm.Code
	version string
}

func (f foreignVersion) Version() string { return f.version }
