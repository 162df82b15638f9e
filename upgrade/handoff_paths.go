package upgrade

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/hotline-go/hotline/fsm"
)

// How a handed-over machine reaches a version the new binary has. A
// Handoff plans each machine name and version once, before it starts any
// machine, so that a machine no version can read refuses the whole
// handoff while the old process still holds everything.

// restorePlan is how the machines of one name and version are restored:
// through the UPGRADE of each of steps in turn, then started under code
// (loaded as it is if of the image's version, else through its UPGRADE).
type restorePlan struct {
	steps []fsm.Code
	code  fsm.Code
}

// plan returns how a machine of machine and from is restored: under the
// codes WithCodes gave for it, or under the release handler's current
// version. It returns an error wrapping ErrNoPath, naming the versions
// this binary has, when no chain of declared UPGRADE handlers leads from
// from to the last of them.
func (h *Handoff) plan(ctx context.Context, machine, from string) (restorePlan, error) {
	codes := h.codes[machine]
	if len(codes) == 0 && h.cfg.release != nil {
		code, err := h.cfg.release.releaseCode(ctx, machine, from)
		return restorePlan{code: code}, err
	}
	if len(codes) == 0 {
		return restorePlan{}, fmt.Errorf("no code for %s in this binary", machine)
	}
	path := codePath(codes, from)
	if path == nil {
		return restorePlan{}, fmt.Errorf("%w: %s %s, of the machine handed over: this binary has %s %s",
			ErrNoPath, machine, from, machine, describeCodes(codes))
	}
	return restorePlan{steps: path[:len(path)-1], code: path[len(path)-1]}, nil
}

// chain returns the code a machine is restored under and its image, the
// state and data brought through the UPGRADE of every version between the
// image's and that code's (the last one is left to fsm.FromImage).
func (h *Handoff) chain(ctx context.Context, img fsm.Image) (fsm.Image, fsm.Code, error) {
	p, err := h.plan(ctx, img.Machine, img.Version)
	if err != nil {
		return img, nil, err
	}
	img, err = p.apply(ctx, img)
	return img, p.code, err
}

// apply runs the UPGRADE of p's steps on img.
func (p restorePlan) apply(ctx context.Context, img fsm.Image) (fsm.Image, error) {
	for _, c := range p.steps {
		in, err := c.Upgrade(ctx, img.Version, img.State, img.Data)
		if err != nil {
			return img, fmt.Errorf("upgrade %s %s to %s: %w", img.Machine, img.Version, c.Version(), err)
		}
		data, err := in.Encode()
		if err != nil {
			return img, fmt.Errorf("upgrade %s %s to %s: %w", img.Machine, img.Version, c.Version(), err)
		}
		img.Version, img.State, img.Data = c.Version(), in.State(), data
	}
	return img, nil
}

// codePath returns the codes data of version from goes through to reach
// the last of codes (oldest first), that one included, or nil if no chain
// of declared UPGRADE handlers ([fsm.Paths]; undeclared: any version)
// leads there. From a version among codes it prefers each later version
// in turn; from one not among them, straight to the last.
func codePath(codes []fsm.Code, from string) []fsm.Code {
	last := len(codes) - 1
	at := slices.IndexFunc(codes, func(c fsm.Code) bool { return c.Version() == from })
	if at == last {
		return codes[last:]
	}
	var walk func(i int, v string) []fsm.Code
	walk = func(i int, v string) []fsm.Code {
		next := make([]int, 0, len(codes))
		if i < 0 {
			next = append(next, last)
			for j := range last {
				next = append(next, j)
			}
		} else {
			for j := i + 1; j <= last; j++ {
				next = append(next, j)
			}
		}
		for _, j := range next {
			if !upgradesFrom(codes[j], v) {
				continue
			}
			if j == last {
				return codes[last:]
			}
			if rest := walk(j, codes[j].Version()); rest != nil {
				return append([]fsm.Code{codes[j]}, rest...)
			}
		}
		return nil
	}
	return walk(at, from)
}

// upgradesFrom reports whether c's UPGRADE reads data of version v, as
// far as c declares it.
func upgradesFrom(c fsm.Code, v string) bool {
	p, ok := c.(fsm.Paths)
	return !ok || declares(p.UpgradesFrom(), v)
}

// describeCodes names the versions of codes with the versions each
// upgrades from: "v2 (upgrades from v1), v3 (upgrades from any version)".
func describeCodes(codes []fsm.Code) string {
	parts := make([]string, len(codes))
	for i, c := range codes {
		var from []string
		if p, ok := c.(fsm.Paths); ok {
			from = p.UpgradesFrom()
		}
		parts[i] = c.Version() + " (upgrades from " + describeFrom(from) + ")"
	}
	return strings.Join(parts, ", ")
}

func describeFrom(from []string) string {
	switch {
	case from == nil:
		return "any version"
	case len(from) == 0:
		return "none"
	}
	return strings.Join(from, ", ")
}
