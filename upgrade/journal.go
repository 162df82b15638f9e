package upgrade

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
)

// The journal is a file of JSON lines, release.journal in the directory of
// WithJournal, one record per line, each written and synced before the
// step it announces is taken as done:
//
//	{"op":"state","machine":"phone","to":"v1","permanent":"v1"}   (after a compaction)
//	{"op":"begin","machine":"phone","kind":"upgrade","from":"v1","to":"v2"}
//	{"op":"begin","machine":"phone","kind":"rollback","from":"v2","to":"v1","some":true}
//	{"op":"begin","machine":"phone","kind":"end-sessions","from":"v2","to":"v1"}
//	{"op":"commit","machine":"phone","from":"v1","to":"v2","current":"v2","permanent":"v1"}
//	{"op":"abort","machine":"phone","from":"v1","to":"v2"}
//	{"op":"confirm","machine":"phone","to":"v2"}
//
// A commit's "current" is the version current after it: to for a move of
// every machine, the one before for a move of some (a selector, a canary's
// cohort). Journals written before it existed have none; to is taken.
//
// A begin's "from" is the version current when it was written, but for
// kind "end-sessions": the [ReleaseHandler.Rollback] that ends a
// new-sessions rollout to from, new machines back on to, the current
// version (which it leaves as it is). Journals written before that kind
// existed have a rollback from to to to (the same version) for it.
//
// At the next NewReleaseHandler the journal is replayed. The machines died
// with the process (a binary restart hands them over separately, and
// restores them on the version this decides), so no machine has to be
// moved back or on: what is decided is the version the host comes back
// on, current and permanent, and each decision is reported as a
// [Recovery]:
//
//   - An upgrade begun and neither committed nor aborted, wherever the
//     process died (before the first machine changed, in the middle of the
//     cut, or after every machine changed but before the commit record),
//     is undone: the commit is the point of no return, and the caller never
//     heard that it succeeded. Outcome "undone".
//   - A rollback of every machine begun and not ended is resumed: the operator asked to
//     leave From for To, a version that ran before, and a rollback needs no
//     confirmation (its commit makes To permanent if From was). Coming back
//     on From would bring back the version being abandoned. Outcome
//     "resumed". A rollback of some machines (a begin with "some") is
//     undone as an upgrade is: its commit would have changed neither
//     version, and its machines died with the process.
//   - The end of a new-sessions rollout begun and not ended is resumed:
//     the share is not journaled, so nothing of the rollout survives a
//     restart either way. Outcome "resumed", Kind "end-sessions".
//   - A committed upgrade that was not confirmed is not kept: the host
//     comes back on the permanent version, as OTP's release handler does
//     (two-phase: only a confirmed version survives a restart). Outcome
//     "reverted to permanent".
//
// In every case Recovery.Current is the version the host comes back on.
// The journal is then compacted to one "state" record per machine name. A
// line that is not a whole record (a torn last line, garbage) is dropped,
// the records before and after it kept, and reported as a Recovery with
// Outcome "dropped" that names the line.

const journalFile = "release.journal"

// journalLockFile is the file a compaction holds an advisory lock (flock)
// on, from before it reads the journal until its file has replaced it,
// so that two processes on one directory (the old and the new of a binary
// restart) never compact at once. It is never removed: a lock on a file
// that may be removed and made again locks nothing.
const journalLockFile = "release.journal.lock"

// journalTmpPattern is the name of a compaction's temporary file
// (os.CreateTemp's pattern), in the journal's directory.
const journalTmpPattern = "release.journal.*.tmp"

// Kinds of a begin record.
const (
	kindUpgrade  = "upgrade"
	kindRollback = "rollback"
	// kindEndSessions is the [ReleaseHandler.Rollback] that ends a
	// new-sessions rollout: from is the version it sent new machines to,
	// to the current version they go back to.
	kindEndSessions = "end-sessions"
)

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
	Kind      string `json:"kind,omitempty"` // begin: "upgrade", "rollback" or "end-sessions"
	From      string `json:"from,omitempty"`
	To        string `json:"to,omitempty"`
	Current   string `json:"current,omitempty"` // commit: current after it
	Permanent string `json:"permanent,omitempty"`
	// Some marks the begin of a move of some machines only (a selector, a
	// canary's cohort): its commit leaves the current and permanent
	// version as they are, so a restart has nothing of it to resume.
	// Journals written before it existed have none: a rollback is resumed.
	Some bool `json:"some,omitempty"`
}

// A Recovery is what [NewReleaseHandler] did about an upgrade that the
// previous process had not finished or not confirmed.
type Recovery struct {
	Machine string `json:"machine"`
	// Kind is "upgrade", "rollback", "end-sessions" (the rollback that
	// ends a new-sessions rollout to From, new machines back on To) or
	// "journal" (Outcome "dropped" or "unknown version").
	Kind string `json:"kind"`
	From string `json:"from"`
	To   string `json:"to"`
	// Outcome is "undone" (the process died in an upgrade from From to To,
	// before its commit: it did not happen), "resumed" (the process died
	// in a rollback from From to To, or in the end of a new-sessions
	// rollout: it is taken as done), "reverted to permanent" (an upgrade
	// from From, the permanent version, to To had committed but was not
	// confirmed: the host comes back on From), "dropped" or "unknown
	// version".
	Outcome string `json:"outcome"`
	// Current is the version the host comes back on: current and
	// permanent.
	Current string `json:"current"`
	// Detail says, for Outcome "dropped", which line of the journal was
	// not a whole record, and why; Kind is then "journal", and Machine the
	// machine the line named, if it could be read. For Outcome "unknown
	// version" it says which version the journal named and which one is
	// used; for an "end-sessions" read from a journal older than that kind
	// (a rollback from To to To), it says so.
	Detail string `json:"detail,omitempty"`
}

// Outcomes of a [Recovery].
const (
	OutcomeUndone              = "undone"
	OutcomeResumed             = "resumed"
	OutcomeRevertedToPermanent = "reverted to permanent"
	// OutcomeDropped is a line of the journal that was not a whole record
	// (a write torn by a crash, garbage): it was left out of the replay
	// and of the compacted journal; every whole record was kept.
	OutcomeDropped = "dropped"
	// OutcomeUnknownVersion is a machine name whose version in the journal
	// (To) is not registered: the host runs its first registered version
	// (Current) instead, until To is registered or another version is
	// confirmed. See [ReleaseHandler.Recovered].
	OutcomeUnknownVersion = "unknown version"
)

type journalState struct{ current, permanent string }

// replay is the journal's content, resolved.
type replay struct {
	state      map[string]journalState
	recoveries []Recovery
	dropped    []Recovery // lines that were not whole records
	// live and pending are the journal before it is resolved: the state
	// of each machine name and its begin without an end, what a
	// compaction while the process runs keeps.
	live    map[string]journalState
	pending map[string]record
}

// parseRecord decodes one line of the journal.
func parseRecord(line []byte) (record, error) {
	var rec record
	if err := json.Unmarshal(line, &rec); err != nil {
		return record{}, fmt.Errorf("not a record: %w", err)
	}
	return rec, nil
}

// quoteStart quotes the first bytes of a dropped line, for the report.
func quoteStart(line []byte) string {
	const most = 40
	if len(line) > most {
		return fmt.Sprintf("%q...", line[:most])
	}
	return fmt.Sprintf("%q", line)
}

// decodeJournal reads and resolves a journal. It keeps every whole record
// and drops, reporting each as a Recovery with Outcome "dropped", what is
// not one: a last line without its newline (a write torn by a crash), a
// line that is not a record (garbage, or a record the filesystem lost to
// zeros), a record without a machine or with an unknown op. A line that
// ends in a whole record after garbage (a write cut short by a full disk,
// then the next record appended to it) keeps that record. The error is
// for a journal that cannot be read at all; decodeJournal itself returns
// none.
func decodeJournal(b []byte) (replay, error) {
	rp := replay{state: make(map[string]journalState)}
	pending := map[string]record{}
	drop := func(n int, line []byte, machine, why string) {
		rp.dropped = append(rp.dropped, Recovery{Machine: machine, Kind: "journal", Outcome: OutcomeDropped,
			Detail: fmt.Sprintf("line %d (%d bytes, %s): %s", n, len(line), quoteStart(line), why)})
	}
	for n := 1; len(b) > 0; n++ {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			drop(n, b, "", "torn: no newline at the end (a write cut short)")
			break
		}
		line := b[:i]
		b = b[i+1:]
		rec, err := parseRecord(line)
		if err != nil {
			// A record appended after a write cut short shares its line.
			j := bytes.LastIndex(line, []byte(`{"op":`))
			if j <= 0 {
				drop(n, line, "", err.Error())
				continue
			}
			if rec, err = parseRecord(line[j:]); err != nil {
				drop(n, line, "", err.Error())
				continue
			}
			drop(n, line[:j], "", "not a record, before a whole one on the same line")
		}
		if rec.Machine == "" {
			drop(n, line, "", "no machine")
			continue
		}
		st := rp.state[rec.Machine]
		switch rec.Op {
		case recState:
			st = journalState{current: rec.To, permanent: rec.Permanent}
		case recBegin:
			pending[rec.Machine] = rec
			if st.current == "" {
				// The version current at the begin: its from, but for
				// the end of a new-sessions rollout.
				at := rec.From
				if rec.Kind == kindEndSessions {
					at = rec.To
				}
				st = journalState{current: at, permanent: at}
			}
		case recCommit:
			delete(pending, rec.Machine)
			st = journalState{current: cmp.Or(rec.Current, rec.To), permanent: rec.Permanent}
		case recAbort:
			delete(pending, rec.Machine)
		case recConfirm:
			// No move runs during a Confirm: a begin before it without an
			// end is a move whose commit could not be written
			// (ErrNotJournaled), and has ended.
			delete(pending, rec.Machine)
			st = journalState{current: rec.To, permanent: rec.To}
		default:
			drop(n, line, rec.Machine, fmt.Sprintf("unknown op %q", rec.Op))
			continue
		}
		rp.state[rec.Machine] = st
	}
	rp.live, rp.pending = maps.Clone(rp.state), pending
	for _, name := range slices.Sorted(maps.Keys(rp.state)) {
		st := rp.state[name]
		p, pend := pending[name]
		switch {
		case pend && (p.Kind == kindEndSessions || p.Kind == kindRollback && !p.Some && p.From == p.To):
			// The end of a new-sessions rollout, resumed: it changes
			// neither version, and the share does not survive a restart.
			// A journal older than its kind has a rollback from the
			// current version to itself for it.
			rc := Recovery{Machine: name, Kind: kindEndSessions, From: p.From, To: p.To, Outcome: OutcomeResumed}
			if p.Kind == kindRollback {
				rc.From = ""
				rc.Detail = fmt.Sprintf("an older journal's rollback from %s to %s: the end of a new-sessions rollout, new machines back on %s (the version it sent them to was not recorded)", p.To, p.To, p.To)
			}
			st.current = st.permanent
			rc.Current = st.current
			rp.recoveries = append(rp.recoveries, rc)
		case pend && p.Kind == kindRollback && !p.Some:
			// Resumed: as its commit would have done.
			if st.permanent == p.From || st.permanent == "" {
				st.permanent = p.To
			}
			st.current = st.permanent
			rp.recoveries = append(rp.recoveries, Recovery{Machine: name, Kind: p.Kind, From: p.From, To: p.To, Outcome: OutcomeResumed, Current: st.current})
		case pend:
			st.current = st.permanent
			rp.recoveries = append(rp.recoveries, Recovery{Machine: name, Kind: cmp.Or(p.Kind, kindUpgrade), From: p.From, To: p.To, Outcome: OutcomeUndone, Current: st.current})
		case st.current != st.permanent && st.permanent != "":
			rp.recoveries = append(rp.recoveries, Recovery{Machine: name, Kind: kindUpgrade, From: st.permanent, To: st.current, Outcome: OutcomeRevertedToPermanent, Current: st.permanent})
			st.current = st.permanent
		}
		rp.state[name] = st
	}
	return rp, nil
}

// journal appends records to the journal file. The file at path may be
// replaced under it: the new process of a binary restart opens the same
// journal and compacts it (a new file renamed over it) while this process
// still runs, and may yet fail and leave this one serving. So append
// follows the path (see [journal.append]).
type journal struct {
	mu   sync.Mutex
	path string
	f    *os.File
	// compactAt is the size past which append compacts the file.
	compactAt int64
	// beforeAppend, if not nil, is called with each record's op before
	// append writes it (a test seam).
	beforeAppend func(op string)
}

// journalCompactAt is the size past which a running process compacts its
// journal: about ten thousand records.
const journalCompactAt = 1 << 20

// openJournal replays the journal in dir, compacts it and opens it for
// appending.
func openJournal(dir string) (*journal, replay, error) {
	return openJournalHook(dir, journalHooks{})
}

// journalHooks are the test seams of a compaction. Each is called if not
// nil.
type journalHooks struct {
	// beforeRename is called once the compacted file is written and
	// before it replaces the journal (another process appends meanwhile).
	beforeRename func()
	// lockWaits is called, once, when the compaction lock is held by
	// another compaction and the compaction waits for it.
	lockWaits func()
}

// openJournalHook is openJournal with test seams.
//
// It holds the compaction lock ([lockCompaction]) from before it reads
// the journal until the compacted file has replaced it, and removes,
// holding it, the temporary files that a compaction cut short by a crash
// left: none is in use, since a compaction holds the lock while its file
// exists.
//
// The journal is read through a descriptor kept open until the compacted
// file has replaced it: whole records that another process (the old one
// of a binary restart) appended to it after it was read are then read
// from the descriptor and appended to the new file. A record that process
// appends after the rename is written again in the new file by its own
// append (see [journal.append]); one that both copy is there twice, which
// replays the same.
func openJournalHook(dir string, hooks journalHooks) (*journal, replay, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, replay{}, fmt.Errorf("%w: %w", ErrBadJournal, err)
	}
	unlock, err := lockCompaction(dir, hooks.lockWaits)
	if err != nil {
		return nil, replay{}, err
	}
	defer unlock()
	if err := removeTemporaries(dir); err != nil {
		return nil, replay{}, err
	}
	path := filepath.Join(dir, journalFile)
	old, err := os.Open(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, replay{}, fmt.Errorf("%w: %w", ErrBadJournal, err)
	}
	var b []byte
	if old != nil {
		defer old.Close()
		if b, err = io.ReadAll(old); err != nil {
			return nil, replay{}, fmt.Errorf("%w: %w", ErrBadJournal, err)
		}
	}
	rp, err := decodeJournal(b)
	if err != nil {
		return nil, replay{}, err
	}
	var recs []record
	for _, name := range slices.Sorted(maps.Keys(rp.state)) {
		if st := rp.state[name]; st.permanent != "" {
			recs = append(recs, record{Op: recState, Machine: name, To: st.permanent, Permanent: st.permanent})
		}
	}
	if b, err = encodeRecords(recs); err != nil {
		return nil, replay{}, err
	}
	f, err := replaceFile(path, b, old, hooks.beforeRename)
	if err != nil {
		return nil, replay{}, err
	}
	return &journal{path: path, f: f, compactAt: journalCompactAt}, rp, nil
}

// lockCompaction takes the compaction lock of the journal in dir: an
// exclusive flock on journalLockFile, waiting for another process's (or
// another journal's) compaction to end; waits, if not nil, is called once
// if it has to wait. unlock lets go of it. A compaction is a read, a
// write and a rename of a small file: nobody holds the lock for long.
func lockCompaction(dir string, waits func()) (unlock func(), err error) {
	path := filepath.Join(dir, journalLockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadJournal, err)
	}
	err = flock(f, syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		if waits != nil {
			waits()
		}
		err = flock(f, syscall.LOCK_EX)
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%w: lock %s: %w", ErrBadJournal, path, err)
	}
	// Closing the descriptor lets go of the lock.
	return func() { _ = f.Close() }, nil
}

// flock is syscall.Flock on f, taken again when a signal interrupts it.
func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// removeTemporaries removes the compactions' temporary files in dir. Call
// it with the compaction lock held: every one is then a crash's leftover.
// The one name every compaction used before (release.journal.tmp) is left
// alone: a binary from before the lock, which takes none, may be writing
// it.
func removeTemporaries(dir string) error {
	names, err := filepath.Glob(filepath.Join(dir, journalTmpPattern))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadJournal, err)
	}
	for _, name := range names {
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: remove a compaction's leftover: %w", ErrBadJournal, err)
		}
	}
	return nil
}

// encodeRecords is recs as journal lines.
func encodeRecords(recs []record) ([]byte, error) {
	var buf bytes.Buffer
	for _, rec := range recs {
		line, err := json.Marshal(rec)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadJournal, err)
		}
		buf.Write(append(line, '\n'))
	}
	return buf.Bytes(), nil
}

// replaceFile writes b to a new temporary file of its own, renames it
// over path and returns it open for appending, after the whole records
// appended to old (the file at path, read to its end before) since it was
// read. The temporary file is removed if it cannot be renamed. Call it
// with the compaction lock held.
func replaceFile(path string, b []byte, old *os.File, beforeRename func()) (*os.File, error) {
	tmp, err := writeTemp(filepath.Dir(path), b)
	if err != nil {
		return nil, err
	}
	if beforeRename != nil {
		beforeRename()
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("%w: %w", ErrBadJournal, err)
	}
	// The rename is durable once the directory is synced: until then a
	// crash may bring back the file replaced, without the records that
	// are appended to the new one from here.
	if err := syncDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadJournal, err)
	}
	if old == nil {
		return f, nil
	}
	late, err := io.ReadAll(old)
	if err == nil {
		// A last line without its newline is still being written: its
		// writer finds the file replaced, and writes it again there.
		late = late[:bytes.LastIndexByte(late, '\n')+1]
		if len(late) > 0 {
			if _, err = f.Write(late); err == nil {
				err = f.Sync()
			}
		}
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%w: %w", ErrBadJournal, err)
	}
	return f, nil
}

// writeTemp writes b to a new file in dir, named after
// journalTmpPattern (mode 0600), syncs it and returns its name. It leaves
// no file if it fails.
func writeTemp(dir string, b []byte) (string, error) {
	f, err := os.CreateTemp(dir, journalTmpPattern)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadJournal, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("%w: %w", ErrBadJournal, err)
	}
	return f.Name(), nil
}

// syncDir syncs the directory dir, so that a rename in it survives a
// crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadJournal, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%w: sync %s: %w", ErrBadJournal, dir, err)
	}
	return nil
}

// appendAttempts bounds how often append writes a record again because the
// file was replaced meanwhile (a successor compacts once, at its start).
const appendAttempts = 3

// append writes rec and syncs it, to the file at the journal's path: if a
// successor replaced the file since the last record, append opens the new
// one first, and if it was replaced between the check and the write, append
// writes rec again in the new one. A record written twice (once in the
// file replaced, or once read by the successor's compaction and once
// after) is harmless: replaying any record twice decides the same. Before,
// every record written after a successor's compaction went to the
// unlinked file, and was lost: the confirm of a version, an upgrade after
// a failed handoff, the commit of a rollout the handoff waited for.
func (j *journal) append(rec record) error {
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadJournal, err)
	}
	line = append(line, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.beforeAppend != nil {
		j.beforeAppend(rec.Op)
	}
	for range appendAttempts {
		if err := j.follow(); err != nil {
			return err
		}
		if _, err := j.f.Write(line); err != nil {
			return fmt.Errorf("%w: %w", ErrBadJournal, err)
		}
		if err := j.f.Sync(); err != nil {
			return fmt.Errorf("%w: %w", ErrBadJournal, err)
		}
		same, err := j.current()
		if err != nil {
			return err
		}
		if same {
			return j.compactIfLarge()
		}
	}
	return fmt.Errorf("%w: %s replaced while a record was written, %d times", ErrBadJournal, j.path, appendAttempts)
}

// compactIfLarge rewrites the journal, with j.mu held, once it has grown
// past j.compactAt: one "state" record per machine name with its current
// and permanent version, and its begin without an end if it has one (a
// move under way), which replays to the same decision as the records it
// replaces. Unlike the compaction at start it decides nothing: an
// unconfirmed version stays current in it. A line that is not a whole
// record is left out (the next start would have dropped it). A record
// that another process appends meanwhile is kept, as at start
// ([replaceFile]), and the compaction lock is held throughout, as at
// start.
func (j *journal) compactIfLarge() error {
	fi, err := j.f.Stat()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadJournal, err)
	}
	if fi.Size() <= j.compactAt {
		return nil
	}
	unlock, err := lockCompaction(filepath.Dir(j.path), nil)
	if err != nil {
		return err
	}
	defer unlock()
	old, err := os.Open(j.path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadJournal, err)
	}
	defer old.Close()
	b, err := io.ReadAll(old)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadJournal, err)
	}
	rp, err := decodeJournal(b)
	if err != nil {
		return err
	}
	var recs []record
	for _, name := range slices.Sorted(maps.Keys(rp.live)) {
		st := rp.live[name]
		recs = append(recs, record{Op: recState, Machine: name, To: st.current, Permanent: st.permanent})
		if p, ok := rp.pending[name]; ok {
			recs = append(recs, p)
		}
	}
	if b, err = encodeRecords(recs); err != nil {
		return err
	}
	f, err := replaceFile(j.path, b, old, nil)
	if err != nil {
		return err
	}
	_ = j.f.Close() // replaced: nothing more is written to it
	j.f = f
	return nil
}

// current reports whether j.f is the file at j.path.
func (j *journal) current() (bool, error) {
	at, err := os.Stat(j.path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrBadJournal, err)
	}
	open, err := j.f.Stat()
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrBadJournal, err)
	}
	return os.SameFile(at, open), nil
}

// follow opens the file at j.path, made again if it was removed, if it is
// not j.f.
func (j *journal) follow() error {
	same, err := j.current()
	if err != nil || same {
		return err
	}
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadJournal, err)
	}
	_ = j.f.Close() // replaced: nothing more is written to it
	j.f = f
	return nil
}

func (j *journal) close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.f.Close()
}
