package flags

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Errors of the Set's methods, wrapped with details.
var (
	// ErrBadName: a flag name that is empty, longer than 100 bytes, or has
	// a character other than A–Z a–z 0–9 . _ - / (Set, Delete, LoadFile).
	ErrBadName = errors.New("flags: bad flag name")
	// ErrBadValue: text that is not on, off or N% (ParseValue, LoadFile).
	ErrBadValue = errors.New("flags: bad value")
	// ErrNoWho: a change without its author (Set, Delete, LoadFile, Reload).
	ErrNoWho = errors.New("flags: a change needs who makes it")
	// ErrUnknownFlag: Delete of a flag that is not set.
	ErrUnknownFlag = errors.New("flags: unknown flag")
	// ErrBadFile: a flag file that cannot be read or has a bad line
	// (LoadFile, Reload); the error names the file and the line.
	ErrBadFile = errors.New("flags: bad flag file")
	// ErrNoFile: Reload before any LoadFile succeeded.
	ErrNoFile = errors.New("flags: no flag file loaded")
)

// maxName is the longest flag name, in bytes.
const maxName = 100

// Status is a flag's value and its last change: Old became Value, set by
// Who at When. File reports that the value is the flag file's: the last
// [Set.LoadFile] or [Set.Reload] named the flag, and no [Set.Set] changed
// it since (a Set to the value it has changes nothing, File included).
// It is also what Set, Delete and LoadFile return for each change they
// make.
type Status struct {
	Flag  string    `json:"flag"`
	Value Value     `json:"value"`
	Old   Value     `json:"old"`
	Who   string    `json:"who,omitempty"`
	When  time.Time `json:"when,omitzero"`
	File  bool      `json:"file,omitempty"`
}

// An Option configures a [Set] made by [New].
type Option func(*Set)

// WithLogger sets where the Set logs its changes. Default: slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(s *Set) { s.log = l }
}

// A Set is a set of named feature flags. It is safe for concurrent use:
// reads take no lock; changes are serialised, and each is seen by every
// read that starts after it returns. The zero Set is empty and logs to
// slog.Default(); a Set must not be copied after first use.
type Set struct {
	cur atomic.Pointer[snapshot]

	// Changes are serialised by a one-slot channel rather than a
	// sync.Mutex: a writer waiting for another is then durably blocked, so
	// tests in a testing/synctest bubble can tell it is waiting.
	semOnce sync.Once
	sem     chan struct{} // held by the writer changing the set
	log     *slog.Logger
	file    string // the path of the last good LoadFile; guarded by sem

	afterRead func() // test seam (export_test.go): after LoadFile reads, before it applies
}

// snapshot is the flags at one moment; never changed once published.
type snapshot struct {
	flags map[string]*Status
	names []string // sorted
}

var empty = &snapshot{}

// New returns an empty Set.
func New(opts ...Option) *Set {
	s := &Set{}
	for _, o := range opts {
		o(s)
	}
	return s
}

// lock waits for the set's writers' slot; unlock gives it back.
func (s *Set) lock() {
	s.semOnce.Do(func() { s.sem = make(chan struct{}, 1) })
	s.sem <- struct{}{}
}

func (s *Set) unlock() { <-s.sem }

func (s *Set) load() *snapshot {
	if p := s.cur.Load(); p != nil {
		return p
	}
	return empty
}

// Enabled reports whether the flag called name is on for the machine with
// ID id: always for On, never for Off or a flag that is not set, and for
// Percent(p) iff [Bucket](name, id) < p. It takes no lock and allocates
// nothing.
func (s *Set) Enabled(name, id string) bool {
	st, ok := s.load().flags[name]
	if !ok {
		return false
	}
	v := st.Value
	if v.kind != kindPercent {
		return v.kind == kindOn
	}
	return bucket(name, id) < uint64(v.pct)
}

// Flag is [Set.Enabled]: with it a *Set is an fsm.FlagSource.
func (s *Set) Flag(name, id string) bool { return s.Enabled(name, id) }

// AppendOn appends to dst the names of the flags that are on for the
// machine with ID id, in name order, and returns the extended slice.
func (s *Set) AppendOn(dst []string, id string) []string {
	snap := s.load()
	for _, n := range snap.names {
		if snap.flags[n].Value.enabled(bucketOf(snap.flags[n].Value, n, id)) {
			dst = append(dst, n)
		}
	}
	return dst
}

// bucketOf hashes only for a percentage.
func bucketOf(v Value, name, id string) uint64 {
	if v.kind != kindPercent {
		return 0
	}
	return bucket(name, id)
}

// Get returns the flag's value and last change, and whether it is set.
func (s *Set) Get(name string) (Status, bool) {
	st, ok := s.load().flags[name]
	if !ok {
		return Status{}, false
	}
	return *st, true
}

// List returns every flag's value and last change, by name.
func (s *Set) List() []Status {
	snap := s.load()
	out := make([]Status, len(snap.names))
	for i, n := range snap.names {
		out[i] = *snap.flags[n]
	}
	return out
}

// Set sets the flag called name to v, recording who did it and when, and
// logs the change ("flags: set", with flag, old, new, who, when). It
// returns the flag's Status; setting a flag to the value it has changes
// nothing (and logs nothing). Its errors wrap [ErrBadName] or [ErrNoWho].
func (s *Set) Set(name string, v Value, who string) (Status, error) {
	if err := checkName(name); err != nil {
		return Status{}, err
	}
	if who == "" {
		return Status{}, fmt.Errorf("%w: set %s", ErrNoWho, name)
	}
	s.lock()
	defer s.unlock()
	if st, ok := s.load().flags[name]; ok && st.Value == v {
		return *st, nil
	}
	ch := s.applyLocked([]setting{{name: name, v: v}}, who, false)
	return ch[0], nil
}

// Delete removes the flag called name, which then reads off, and logs it
// ("flags: delete"). It returns the last Status, Value Off. Its errors wrap
// [ErrBadName], [ErrNoWho] or [ErrUnknownFlag].
func (s *Set) Delete(name, who string) (Status, error) {
	if err := checkName(name); err != nil {
		return Status{}, err
	}
	if who == "" {
		return Status{}, fmt.Errorf("%w: delete %s", ErrNoWho, name)
	}
	s.lock()
	defer s.unlock()
	if _, ok := s.load().flags[name]; !ok {
		return Status{}, fmt.Errorf("%w %q", ErrUnknownFlag, name)
	}
	ch := s.applyLocked([]setting{{name: name, del: true}}, who, false)
	return ch[0], nil
}

// setting is one change to make.
type setting struct {
	name string
	v    Value
	del  bool
}

// applyLocked makes the changes in one new snapshot, logs each that
// changes a value, and returns their Statuses. The values set are the
// flag file's if file: a flag the file names with the value it has
// already becomes the file's, without a change recorded.
func (s *Set) applyLocked(set []setting, who string, file bool) []Status {
	old := s.load()
	next := &snapshot{flags: make(map[string]*Status, len(old.flags)+len(set))}
	for n, st := range old.flags {
		next.flags[n] = st
	}
	now := time.Now()
	var changes []Status
	var msgs []string
	swap := false // a flag became the file's without a change of value
	for _, c := range set {
		prev, had := next.flags[c.name]
		var was Value
		if had {
			was = prev.Value
		}
		switch {
		case c.del:
			delete(next.flags, c.name)
		case had && was == c.v:
			if file && !prev.File {
				st := *prev
				st.File = true
				next.flags[c.name] = &st
				swap = true
			}
			continue
		default:
			next.flags[c.name] = &Status{Flag: c.name, Value: c.v, Old: was, Who: who, When: now, File: file}
		}
		msg := "flags: set"
		if c.del {
			msg = "flags: delete"
		}
		changes = append(changes, Status{Flag: c.name, Value: c.v, Old: was, Who: who, When: now, File: file && !c.del})
		msgs = append(msgs, msg)
	}
	if len(changes) == 0 && !swap {
		return nil
	}
	l := s.store(next)
	for i, c := range changes {
		l.Info(msgs[i], "flag", c.Flag, "old", c.Old.String(), "new", c.Value.String(), "who", c.Who, "when", c.When)
	}
	return changes
}

// Restore takes over the flags of the process this one replaces at a
// binary restart (its [Set.List], as upgrade.Handoff carries it): the
// values changed there since its last file load survive, and the file's
// values come from this process's file. A carried flag whose value did
// not come from the flag file (File false: set with [Set.Set]) is set to
// its carried Status, Who, When and Old included, over this set's value.
// A carried flag whose value came from the file (File true) keeps this
// set's value if this set has the flag (its own file named it, or the
// program set it), and takes its carried Status otherwise: a line deleted
// from the file does not turn a flag off, as at a [Set.Reload]. So load
// this process's flag file before Restore. Each flag whose value changes
// is logged ("flags: restore", with flag, old, new, who, when: the
// carried change). It returns the flags it changed, as they are now, and
// changes nothing if a carried name is bad (an error wrapping
// [ErrBadName]) or given twice.
func (s *Set) Restore(carried []Status) ([]Status, error) {
	seen := make(map[string]bool, len(carried))
	for _, c := range carried {
		if err := checkName(c.Flag); err != nil {
			return nil, fmt.Errorf("flags: restore: %w", err)
		}
		if seen[c.Flag] {
			return nil, fmt.Errorf("flags: restore: flag %s given twice", c.Flag)
		}
		seen[c.Flag] = true
	}
	s.lock()
	defer s.unlock()
	old := s.load()
	var took []Status
	for _, c := range carried {
		cur, had := old.flags[c.Flag]
		if had && (c.File || sameStatus(*cur, c)) {
			continue
		}
		took = append(took, c)
	}
	if len(took) == 0 {
		return nil, nil
	}
	next := &snapshot{flags: make(map[string]*Status, len(old.flags)+len(took))}
	for n, st := range old.flags {
		next.flags[n] = st
	}
	for _, c := range took {
		next.flags[c.Flag] = &c
	}
	l := s.store(next)
	for _, c := range took {
		var was Value
		if cur, had := old.flags[c.Flag]; had {
			was = cur.Value
		}
		if was != c.Value {
			l.Info("flags: restore", "flag", c.Flag, "old", was.String(), "new", c.Value.String(), "who", c.Who, "when", c.When)
		}
	}
	return took, nil
}

// store makes next, whose flags are set, the set's snapshot, its names
// sorted, and returns the logger to report the change with. s is locked.
func (s *Set) store(next *snapshot) *slog.Logger {
	next.names = make([]string, 0, len(next.flags))
	for n := range next.flags {
		next.names = append(next.names, n)
	}
	slices.Sort(next.names)
	s.cur.Store(next)
	if s.log == nil {
		return slog.Default()
	}
	return s.log
}

// sameStatus reports whether a and b are the same setting: their When
// compared as instants (a carried When has no monotonic reading).
func sameStatus(a, b Status) bool {
	return a.When.Equal(b.When) && a.Flag == b.Flag && a.Value == b.Value && a.Old == b.Old && a.Who == b.Who && a.File == b.File
}

// CheckName returns nil if name is a good flag name: 1–100 bytes from
// A–Z a–z 0–9 . _ - /. Otherwise its error wraps [ErrBadName], quotes
// name and says what is wrong. Set, Delete and LoadFile check names with
// it; a caller that takes names from input (the admin API) can check them
// first.
func CheckName(name string) error { return checkName(name) }

func checkName(name string) error {
	if name == "" || len(name) > maxName {
		return fmt.Errorf("%w %q: want 1–%d bytes", ErrBadName, name, maxName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-' || c == '/') {
			return fmt.Errorf("%w %q: character %q; want A–Z a–z 0–9 . _ - /", ErrBadName, name, c)
		}
	}
	return nil
}
