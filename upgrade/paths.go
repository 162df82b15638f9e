package upgrade

import (
	"context"
	"fmt"
	"slices"

	"github.com/hotline-go/hotline/fsm"
)

// The version graph of one machine name: versions in registration order
// (oldest first); an edge a -> b up (a older) where b's UPGRADE reads a,
// an edge a -> b down where a's downgrade writes b, as each version
// declares through fsm.Paths (undeclared: any). A move follows the
// shortest chain of edges that goes one way only.

// planLocked returns the versions from from to to, both included, along
// the shortest chain, or ErrNoPath. The codes on the chain are loaded.
func (h *ReleaseHandler) planLocked(ctx context.Context, r *release, from, to string) ([]string, error) {
	fi, ti := slices.Index(r.order, from), slices.Index(r.order, to)
	if ti < 0 {
		return nil, fmt.Errorf("%w: %s %s", ErrUnknownVersion, r.name, to)
	}
	if fi < 0 {
		return nil, fmt.Errorf("%w: %s %s (a machine runs it)", ErrUnknownVersion, r.name, from)
	}
	if fi == ti {
		return []string{from}, nil
	}
	up := fi < ti
	// Load every version between, to read what it declares.
	lo, hi := min(fi, ti), max(fi, ti)
	for _, vn := range r.order[lo : hi+1] {
		if _, err := r.versions[vn].load(ctx); err != nil {
			return nil, err
		}
	}
	edge := func(a, b string) bool {
		if up {
			p := r.versions[b].paths
			return p == nil || declares(p.UpgradesFrom(), a)
		}
		p := r.versions[a].paths
		return p == nil || declares(p.DowngradesTo(), b)
	}
	// Breadth-first over the versions between from and to.
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		a := queue[0]
		queue = queue[1:]
		ai := slices.Index(r.order, a)
		for _, b := range r.order[lo : hi+1] {
			bi := slices.Index(r.order, b)
			if _, seen := prev[b]; seen || (up && bi <= ai) || (!up && bi >= ai) || !edge(a, b) {
				continue
			}
			prev[b] = a
			if b == to {
				path := []string{to}
				for v := a; v != ""; v = prev[v] {
					path = append(path, v)
				}
				slices.Reverse(path)
				return path, nil
			}
			queue = append(queue, b)
		}
	}
	dir := "upgrade"
	if !up {
		dir = "downgrade"
	}
	return nil, fmt.Errorf("%w: %s: no %s chain from %s to %s", ErrNoPath, r.name, dir, from, to)
}

func declares(vs []string, v string) bool { return vs == nil || slices.Contains(vs, v) }

// step is how one machine moves from one version to another in one change
// of code: to a code (direct or a chain) and whether as a downgrade.
type step struct {
	code fsm.Code
	down bool
}

// stepLocked plans the move of a machine from from to to.
func (h *ReleaseHandler) stepLocked(ctx context.Context, r *release, from, to string) (step, error) {
	path, err := h.planLocked(ctx, r, from, to)
	if err != nil {
		return step{}, err
	}
	up := slices.Index(r.order, from) < slices.Index(r.order, to)
	if len(path) == 2 {
		return step{code: r.versions[to].code, down: !up}, nil
	}
	codes := make([]fsm.Code, len(path))
	for i, vn := range path {
		codes[i] = r.versions[vn].code
	}
	return step{code: &chain{Code: codes[len(codes)-1], path: codes, up: up}}, nil
}

// pathCodeLocked returns a Code of version to whose Upgrade reads data of
// version from, through the chain if needed (for Restore).
func (h *ReleaseHandler) pathCodeLocked(ctx context.Context, r *release, from, to string) (fsm.Code, error) {
	path, err := h.planLocked(ctx, r, from, to)
	if err != nil {
		return nil, err
	}
	up := slices.Index(r.order, from) < slices.Index(r.order, to)
	codes := make([]fsm.Code, len(path))
	for i, vn := range path {
		codes[i] = r.versions[vn].code
	}
	if up && len(path) == 2 {
		return codes[1], nil
	}
	return &chain{Code: codes[len(codes)-1], path: codes, up: up}, nil
}

// chain is the last version of a path whose Upgrade runs every step of the
// path: UPGRADE after UPGRADE (up), or downgrade after downgrade (down),
// so that one change of code (and one exact fsm.Revert) moves a machine
// along all of it. Every other method is the last version's.
type chain struct {
	fsm.Code
	path []fsm.Code // path[0] is the version the data comes from
	up   bool
}

func (c *chain) Upgrade(ctx context.Context, from, state string, data []byte) (fsm.Instance, error) {
	if from != c.path[0].Version() {
		return nil, fmt.Errorf("%w: chain from %s given data of %s", ErrNoPath, c.path[0].Version(), from)
	}
	if c.up {
		var in fsm.Instance
		for i := 1; i < len(c.path); i++ {
			var err error
			if in, err = c.path[i].Upgrade(ctx, c.path[i-1].Version(), state, data); err != nil {
				return nil, fmt.Errorf("step %s -> %s: %w", c.path[i-1].Version(), c.path[i].Version(), err)
			}
			if i < len(c.path)-1 {
				state = in.State()
				if data, err = in.Encode(); err != nil {
					return nil, err
				}
			}
		}
		return in, nil
	}
	in, err := c.path[0].Load(ctx, state, data)
	if err != nil {
		return nil, err
	}
	for i := 1; i < len(c.path); i++ {
		if state, data, err = c.path[i-1].Downgrade(ctx, c.path[i].Version(), in); err != nil {
			return nil, fmt.Errorf("step %s -> %s: %w", c.path[i-1].Version(), c.path[i].Version(), err)
		}
		if in, err = c.path[i].Load(ctx, state, data); err != nil {
			return nil, err
		}
	}
	return in, nil
}
