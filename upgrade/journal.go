package upgrade

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// The journal is a file of JSON lines, release.journal in the directory of
// WithJournal, one record per line, each written and synced before the
// step it announces is taken as done:
//
//	{"op":"state","machine":"phone","to":"v1","permanent":"v1"}   (after a compaction)
//	{"op":"begin","machine":"phone","kind":"upgrade","from":"v1","to":"v2"}
//	{"op":"commit","machine":"phone","from":"v1","to":"v2","permanent":"v1"}
//	{"op":"abort","machine":"phone","from":"v1","to":"v2"}
//	{"op":"confirm","machine":"phone","to":"v2"}
//
// At the next NewReleaseHandler the journal is replayed: an upgrade begun
// and neither committed nor aborted was cut short by the death of the
// process; its machines died with it, so it is undone (the version that
// was current before it stays current). A committed but unconfirmed
// upgrade is not kept either: the host comes back on the permanent
// version, as OTP's release handler does. Each is reported as a
// [Recovery]. The journal is then compacted to one "state" record per
// machine name. A torn last line (a crash while writing it) is ignored.

const journalFile = "release.journal"

const (
	recState   = "state"
	recBegin   = "begin"
	recCommit  = "commit"
	recAbort   = "abort"
	recConfirm = "confirm"
)

// record is one line of the journal.
type record struct {
	Op        string `json:"op"`
	Machine   string `json:"machine"`
	Kind      string `json:"kind,omitempty"` // begin: "upgrade" or "rollback"
	From      string `json:"from,omitempty"`
	To        string `json:"to,omitempty"`
	Permanent string `json:"permanent,omitempty"`
}

// A Recovery is what [NewReleaseHandler] did about an upgrade that the
// previous process had not finished or not confirmed.
type Recovery struct {
	Machine string `json:"machine"`
	Kind    string `json:"kind"` // "upgrade" or "rollback"
	From    string `json:"from"`
	To      string `json:"to"`
	// Outcome is "undone" (the process died mid-upgrade: From stays
	// current) or "reverted to permanent" (the upgrade to To had committed
	// but was not confirmed: From, the permanent version, is current).
	Outcome string `json:"outcome"`
}

type journalState struct{ current, permanent string }

// replay is the journal's content, resolved.
type replay struct {
	state      map[string]journalState
	recoveries []Recovery
}

// decodeJournal reads and resolves a journal. A last line without its
// newline is a torn write and is ignored.
func decodeJournal(b []byte) (replay, error) {
	rp := replay{state: make(map[string]journalState)}
	pending := map[string]record{}
	for n := 1; len(b) > 0; n++ {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break // torn
		}
		line := b[:i]
		b = b[i+1:]
		var rec record
		if err := json.Unmarshal(line, &rec); err != nil {
			return replay{}, fmt.Errorf("%w: line %d: %w", ErrBadJournal, n, err)
		}
		if rec.Machine == "" {
			return replay{}, fmt.Errorf("%w: line %d: no machine", ErrBadJournal, n)
		}
		st := rp.state[rec.Machine]
		switch rec.Op {
		case recState:
			st = journalState{current: rec.To, permanent: rec.Permanent}
		case recBegin:
			pending[rec.Machine] = rec
			if st.current == "" {
				st = journalState{current: rec.From, permanent: rec.From}
			}
		case recCommit:
			delete(pending, rec.Machine)
			st = journalState{current: rec.To, permanent: rec.Permanent}
		case recAbort:
			delete(pending, rec.Machine)
		case recConfirm:
			st = journalState{current: rec.To, permanent: rec.To}
		default:
			return replay{}, fmt.Errorf("%w: line %d: unknown op %q", ErrBadJournal, n, rec.Op)
		}
		rp.state[rec.Machine] = st
	}
	for _, name := range slices.Sorted(mapKeys(rp.state)) {
		st := rp.state[name]
		if p, ok := pending[name]; ok {
			rp.recoveries = append(rp.recoveries, Recovery{Machine: name, Kind: p.Kind, From: p.From, To: p.To, Outcome: "undone"})
			continue
		}
		if st.current != st.permanent && st.permanent != "" {
			rp.recoveries = append(rp.recoveries, Recovery{Machine: name, Kind: "upgrade", From: st.permanent, To: st.current, Outcome: "reverted to permanent"})
		}
	}
	return rp, nil
}

// journal appends records to the journal file.
type journal struct {
	mu sync.Mutex
	f  *os.File
}

// openJournal replays the journal in dir, compacts it and opens it for
// appending.
func openJournal(dir string) (*journal, replay, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, replay{}, fmt.Errorf("%w: %w", ErrBadJournal, err)
	}
	path := filepath.Join(dir, journalFile)
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, replay{}, fmt.Errorf("%w: %w", ErrBadJournal, err)
	}
	rp, err := decodeJournal(b)
	if err != nil {
		return nil, replay{}, err
	}
	var buf bytes.Buffer
	for _, name := range slices.Sorted(mapKeys(rp.state)) {
		st := rp.state[name]
		if st.permanent == "" {
			continue
		}
		line, err := json.Marshal(record{Op: recState, Machine: name, To: st.permanent, Permanent: st.permanent})
		if err != nil {
			return nil, replay{}, fmt.Errorf("%w: %w", ErrBadJournal, err)
		}
		buf.Write(append(line, '\n'))
	}
	tmp := path + ".tmp"
	if err := writeSync(tmp, buf.Bytes()); err != nil {
		return nil, replay{}, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, replay{}, fmt.Errorf("%w: %w", ErrBadJournal, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, replay{}, fmt.Errorf("%w: %w", ErrBadJournal, err)
	}
	return &journal{f: f}, rp, nil
}

func writeSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadJournal, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadJournal, err)
	}
	return nil
}

// append writes rec and syncs it.
func (j *journal) append(rec record) error {
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadJournal, err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("%w: %w", ErrBadJournal, err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadJournal, err)
	}
	return nil
}

func (j *journal) close() error { return j.f.Close() }
