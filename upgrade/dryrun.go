package upgrade

import (
	"context"
	"fmt"
	"sync"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
)

// A DryRunReport says what an upgrade would do: which machines it selects
// and which of them would fail, and why.
type DryRunReport struct {
	Machine  string          `json:"machine"`
	To       string          `json:"to"`
	Selected int             `json:"selected"`
	Passed   int             `json:"passed"`
	Failures []DryRunFailure `json:"failures,omitempty"`
}

// A DryRunFailure is one machine whose UPGRADE (or downgrade back) failed
// on a snapshot of its data.
type DryRunFailure struct {
	ID    string `json:"id"`
	Ref   string `json:"ref"`
	From  string `json:"from"`
	Error string `json:"error"`
}

// DryRun runs the upgrade of machine to version to on a snapshot of every
// selected machine's data, without changing any machine: each snapshot
// goes through the chain of UPGRADE handlers, and back through the
// downgrades when the step is direct ([fsm.RoundTrip]). The machines are
// not suspended (a snapshot is taken between two events). It returns the
// pre-flight errors of [ReleaseHandler.Upgrade] (ErrNoPath and the rest);
// failures of single machines are in the report, not the error.
func (h *ReleaseHandler) DryRun(ctx context.Context, machine, to string, opts ...MoveOption) (DryRunReport, error) {
	cfg := newMoveConfig(opts)
	rep := DryRunReport{Machine: machine, To: to}
	r, err := h.lookup(machine)
	if err != nil {
		return rep, err
	}
	h.mu.Lock()
	if _, ok := r.versions[to]; !ok {
		h.mu.Unlock()
		return rep, fmt.Errorf("%w: %s %s", ErrUnknownVersion, machine, to)
	}
	type probe struct {
		ref  actor.Ref
		from string
		id   string
	}
	var probes []probe
	codes := map[string]fsm.Code{}
	direct := map[string]bool{}
	for ref, t := range r.live {
		if t.version == to || !cfg.selector.picks(t) {
			continue
		}
		if _, ok := codes[t.version]; !ok {
			c, err := h.pathCodeLocked(ctx, r, t.version, to)
			if err == nil {
				_, err = h.planLocked(ctx, r, to, t.version)
			}
			if err != nil {
				h.mu.Unlock()
				return rep, err
			}
			codes[t.version] = c
			_, isChain := c.(*chain)
			direct[t.version] = !isChain
		}
		probes = append(probes, probe{ref: ref, from: t.version, id: t.id})
	}
	fromCodes := map[string]fsm.Code{}
	for v := range codes {
		fromCodes[v] = r.versions[v].code
	}
	h.mu.Unlock()

	rep.Selected = len(probes)
	var mu sync.Mutex
	ts := make([]*target, len(probes))
	for i, p := range probes {
		ts[i] = &target{ref: p.ref, from: p.from, t: &tracked{id: p.id}}
	}
	err = h.parallel(ctx, ts, func(tg *target) error {
		inf, err := fsm.Inspect(ctx, tg.ref)
		if isNoProc(err) {
			return nil
		}
		if err == nil {
			if inf.Version != tg.from {
				return nil // moved meanwhile
			}
			s := inf.Snapshot()
			if direct[tg.from] {
				err = fsm.RoundTrip(ctx, fromCodes[tg.from], codes[tg.from], s)
			} else {
				_, err = codes[tg.from].Upgrade(ctx, s.Version, s.State, s.Data)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			rep.Failures = append(rep.Failures, DryRunFailure{ID: tg.t.id, Ref: tg.ref.String(), From: tg.from, Error: err.Error()})
		} else {
			rep.Passed++
		}
		return nil
	})
	return rep, err
}
