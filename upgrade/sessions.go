package upgrade

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
)

type newSessions struct{ share float64 }

func (s *newSessions) String() string { return fmt.Sprintf("new-sessions(%g%%)", s.share) }
func (*newSessions) strategy()        {}

// NewSessions is proportional shedding: no running machine moves. The
// machines already running stay on their version and drain as they end;
// of the machines started from now on (and picked by the selector), share
// percent start on the new version, the others on the current one. The
// operator raises the share over time by upgrading again with a higher
// one (1, 10, 50, 100); a lower one lowers it (0 sends no new machine to
// the new version), and an upgrade to another version replaces it. An
// upgrade of every machine with another strategy ends it, and so does
// [ReleaseHandler.Rollback] before the share has made the new version
// current: it moves the machines started on the new version back to the
// current one.
//
// Which machines start on the new version is decided by a stable hash
// (FNV-1a) of the machine's name and ID ([fsm.WithID]): a machine
// restarted with the same ID (by its supervisor, or after a binary
// restart) lands on the same version, and raising the share only moves
// IDs from the old version to the new, never back. Machines started
// without an ID are counted instead: of every 100 started, share go to
// the new version. Machines restored from a snapshot ([ReleaseHandler.Restore])
// are old sessions and start on the current version.
//
// At 100% with the zero selector the new version becomes current, as
// after any upgrade (the old one stays permanent, and loaded while a
// machine runs it, until [ReleaseHandler.Confirm]); the old version is
// unloaded when its last machine ends, once it is neither current nor
// permanent. [ReleaseHandler.Status] shows the share and the machines
// started on each side ([MachineStatus].Sessions), and the machines per
// version. share is clamped to [0, 100].
func NewSessions(share float64) Strategy {
	if math.IsNaN(share) {
		share = 0
	}
	return &newSessions{share: min(max(share, 0), 100)}
}

// sessions is a new-sessions rollout in progress. Guarded by
// ReleaseHandler.mu.
type sessions struct {
	to       string
	share    float64
	selector Selector
	n        uint64 // machines without an ID considered so far
	started  [2]int // machines started on the old [0] and new [1] version
}

// admit reports whether a new machine with the given ID starts on the new
// version.
func (s *sessions) admit(machine, id string) bool {
	if id == "" {
		s.n++
		return math.Floor(float64(s.n)*s.share/100) > math.Floor(float64(s.n-1)*s.share/100)
	}
	f := fnv.New64a()
	_, _ = f.Write([]byte(machine))
	_, _ = f.Write([]byte{0})
	_, _ = f.Write([]byte(id))
	return float64(f.Sum64()%10000) < s.share*100
}

// SessionsStatus is a new-sessions rollout ([NewSessions]) of a machine
// name: the version new machines go to, the share, and how many machines
// started on each side since it began.
type SessionsStatus struct {
	To         string   `json:"to"`
	Share      float64  `json:"share"`
	Selector   Selector `json:"selector,omitzero"`
	StartedOld int      `json:"started_old"`
	StartedNew int      `json:"started_new"`
}

func (s *sessions) status() *SessionsStatus {
	return &SessionsStatus{To: s.to, Share: s.share, Selector: s.selector, StartedOld: s.started[0], StartedNew: s.started[1]}
}

// sessionsMove is move for NewSessions, with r.op held: it checks the
// way there and back, then sets the share.
func (h *ReleaseHandler) sessionsMove(ctx context.Context, op string, r *release, to string, cfg moveConfig, s *newSessions, rep *Report) error {
	if op != "upgrade" {
		return fmt.Errorf("upgrade: %s with strategy %s: only an upgrade sets a share", op, s)
	}
	if err := h.setShare(ctx, r, to, cfg.selector, s.share, rep); err != nil {
		return err
	}
	cfg.reportDetail(Progress{Phase: "share", Share: s.share, Detail: fmt.Sprintf("new machines start on %s at %g%%", to, s.share)})
	return nil
}

func (h *ReleaseHandler) setShare(ctx context.Context, r *release, to string, sel Selector, share float64, rep *Report) error {
	r.starts.Lock()
	defer r.starts.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	rep.Policy = r.policy.String()
	if _, ok := r.versions[to]; !ok {
		return fmt.Errorf("%w: %s %s", ErrUnknownVersion, r.name, to)
	}
	if _, err := r.versions[to].load(ctx); err != nil {
		return err
	}
	cur := r.currentLocked()
	rep.From = []string{cur}
	if cur != to {
		if _, err := h.stepLocked(ctx, r, cur, to); err != nil {
			return err
		}
		if _, err := h.planLocked(ctx, r, to, cur); err != nil {
			return err
		}
	}
	ss := r.sessions
	if ss == nil || ss.to != to || !sameSelector(ss.selector, sel) {
		ss = &sessions{to: to, selector: sel}
	}
	ss.share = share
	r.sessions = ss
	rep.Share = &ss.share
	if share >= 100 && sel.all() && cur != to {
		r.history = append(r.history, cur)
		r.current = to
	}
	h.unloadIdleLocked(r)
	rep.Result = "ok"
	return nil
}

func sameSelector(a, b Selector) bool {
	if len(a.IDs) != len(b.IDs) || len(a.Tags) != len(b.Tags) {
		return false
	}
	for i := range a.IDs {
		if a.IDs[i] != b.IDs[i] {
			return false
		}
	}
	for k, v := range a.Tags {
		if w, ok := b.Tags[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// rollbackTargetLocked returns the version Rollback moves r's machines
// to: the current one while a new-sessions rollout that has not made its
// version current runs (that rollout is the last change: rolling back
// ends it, and moves the machines it started back), else the version
// current before the last upgrade, or "" if none.
func (r *release) rollbackTargetLocked() string {
	if s := r.sessions; s != nil && s.to != r.currentLocked() {
		return r.currentLocked()
	}
	if n := len(r.history); n > 0 {
		return r.history[n-1]
	}
	return ""
}
