package upgrade

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/flags"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/internal/handoff"
)

// Errors of a state handoff; see [Handoff].
var (
	// ErrHandoff is returned (wrapped with the reason) by
	// [Handoff.Receive] when the state of the previous process could not be
	// read or restored. The new process must then exit without calling
	// [Restarter.Ready]: the previous process resumes everything.
	ErrHandoff = errors.New("upgrade: state handoff failed")

	// ErrDuplicateKey is returned by [Handoff.Manage] and [Handoff.Adopt]
	// for a key that is already registered.
	ErrDuplicateKey = errors.New("upgrade: key already registered for handoff")

	// ErrHandedOff is the exit reason of the machines the old process
	// stops once the new process has taken them over: they run on there.
	// It wraps [actor.Moved], so that a supervisor does not restart it
	// whatever its restart type (the machine runs on in the new process);
	// [actor.Shutdown], so that the System does not log the exit (one line
	// per machine); and [actor.Killed], so that code that matched the
	// Killed of earlier builds still does. No terminate hook runs: the
	// machine is stopped with a reason that wraps Moved (it has not
	// ended). Links and monitors get it as any reason.
	ErrHandedOff error = handedOff{}
)

type handedOff struct{}

func (handedOff) Error() string   { return "upgrade: machine handed over to the new process" }
func (handedOff) Unwrap() []error { return []error{actor.Moved, actor.Shutdown, actor.Killed} }

// DefaultHandoffTimeout bounds the old process's side of a handoff, from
// the new process's connection to its acknowledgement; see
// [WithHandoffTimeout].
const DefaultHandoffTimeout = 30 * time.Second

// A Handoff moves live state machines, and the connections they own, from
// this process to the one that replaces it at a binary restart, and back in
// place if that process fails before it is ready. Create it with
// [NewHandoff], once, right after [NewRestarter]; the zero value is not
// usable and a Handoff must not be copied. Its methods are safe for
// concurrent use.
//
// In the old process, an upgrade of the [Restarter] runs the handoff: when
// the new process connects, every adopted connection is paused ([Conn.Pause]),
// then every machine managed by then (one the requests in hand managed as
// they finished too) is suspended, imaged ([fsm.CaptureSuspended]),
// and sent with the connections' descriptors and unread bytes. Once the new
// process has acknowledged and called Ready, this process closes its copies
// of the connections (the peers see nothing) and stops its machines with
// [ErrHandedOff]. If the
// new process fails first, the machines and connections are resumed as
// they were, and the reason is logged.
//
// In the new process, [Handoff.Receive] restores the machines (through
// UPGRADE where this binary runs a newer version) and returns them with the
// connections, before [Restarter.Ready].
type Handoff struct {
	r     *Restarter
	sys   *actor.System
	cfg   handoffConfig
	log   *slog.Logger
	codes map[string][]fsm.Code // by machine, oldest version first

	mu         sync.Mutex
	machines   registry[actor.Ref]
	conns      registry[Conn]
	received   bool  // Receive was called: Ready refuses until then (see readyErr)
	receiveErr error // why Receive failed: Ready refuses
}

// A Conn is a connection registered for the handoff with [Handoff.Adopt].
type Conn struct {
	// Conn is the connection: a *net.TCPConn or a *net.UnixConn (any
	// [syscall.Conn] whose descriptor can be passed on).
	Conn net.Conn
	// Owner is the key of the managed machine the connection belongs to,
	// or empty.
	Owner string
	// Meta is the service's own description of the connection, handed to
	// the new process as it is. Default: none.
	Meta []byte
	// Pause stops the service reading from Conn: it must return once no
	// goroutine of the service reads from Conn or sends to its owner on its
	// behalf, with the bytes read from Conn and not yet handled (a
	// bufio.Reader's Buffered bytes). A reader blocked in Read can be woken
	// with Conn.SetReadDeadline(time.Unix(1, 0)). It must return promptly
	// also when the connection has ended meanwhile: with an error wrapping
	// net.ErrClosed, and the connection is left out of the handoff (its
	// machine is not). Pause returns only once the request in hand has
	// run to its end, including what it registers for the handoff
	// ([Handoff.Manage], [Handoff.Adopt] again with an Owner, a new
	// Adopt, a Release): the Handoff reads its registries again after
	// every Pause has returned, pauses a connection adopted meanwhile,
	// hands over a connection adopted again as it is then, and leaves
	// one released meanwhile here. If it returns any other error (ctx
	// ended while the request in hand ran on), the handoff fails and the
	// connection is not resumed: Pause must then withdraw what it began,
	// so that the service reads from Conn as before, also once that
	// request ends (the Example's and the test server's readers show how).
	// Required.
	Pause func(ctx context.Context) (unread []byte, err error)
	// Resume undoes Pause after a failed handoff: the service reads from
	// Conn again, starting with the unread bytes it kept. Required.
	Resume func()
}

// A RestoredConn is a connection handed over by the previous process; see
// [Restored].
//
// Conn's Read waits until this process is ready ([Restarter.Ready]), as the
// listeners' Accept does: until then the previous process may yet resume
// the connection (this one fails before Ready, or is killed at the upgrade
// timeout) from the state it handed over, and a byte read here would be
// lost to it. Start serving whenever convenient. Its Write goes through at
// once. It is not a *net.TCPConn: its NetConn method (an interface{
// NetConn() net.Conn }) returns the connection itself, which does not wait.
type RestoredConn struct {
	Conn   net.Conn // this process's own descriptor; Read waits for Ready
	Owner  string   // the key of its machine, or empty
	Unread []byte   // read by the previous process and not handled: handle them first
	Meta   []byte
}

// Restored is what [Handoff.Receive] returns: the machines, already
// running and managed under their keys, and the connections by key, for the
// service to adopt again.
type Restored struct {
	Machines map[string]actor.Ref
	Conns    map[string]RestoredConn
}

// A HandoffOption configures a [Handoff]; pass them to [NewHandoff].
type HandoffOption func(*handoffConfig)

type handoffConfig struct {
	dir     string
	timeout time.Duration
	codes   []fsm.Code
	spawn   func(key string) []actor.SpawnOption
	flags   fsm.FlagSource // WithHandoffFlags; nil: every flag off

	release *ReleaseHandler

	// Test seams.
	format    uint16                      // the newest format version written and read
	minFormat uint16                      // the oldest format version read
	fault     func(stage string)          // called at the stages of Receive
	ackLate   func()                      // called when the acknowledgement is late, before the read side is shut
	ackShut   func()                      // called when the acknowledgement is late, once the read side is shut
	parentPID func() int                  // the process Receive takes over from
	clock     func() int64                // the host's monotonic clock, in ns (monotonicNow); 0: unknown
	successor func(pid int) (bool, error) // whether the process pid may take the state over (isChild); errNoPeerCred: cannot tell
}

// errNoPeerCred: this system gives no peer credentials that the handoff
// reads (peerPID); the peer is not checked.
var errNoPeerCred = errors.New("peer credentials not read on this system")

// WithCodes gives the versions of machine code this binary carries, oldest
// first: for each machine name, the last code given is the one machines are
// restored under (loaded as they are if of the same version, else through
// its UPGRADE, see [fsm.FromImage]). A machine of a version given earlier
// goes through the UPGRADE of each later version in turn (v1 to v2 to v3);
// one of a version not given goes straight to the last. Each step follows
// what the versions declare they upgrade from ([fsm.Paths]; undeclared:
// any): a step not declared is gone around, and a machine that no chain of
// declared steps brings to the last version makes [Handoff.Receive] fail,
// before it starts any machine, with an error wrapping [ErrNoPath] that
// names the machine, its version and the versions given. Default: none, so
// that a Receive with machines to restore fails.
func WithCodes(codes ...fsm.Code) HandoffOption {
	return func(c *handoffConfig) { c.codes = append(c.codes, codes...) }
}

// WithHandoffDir sets the directory, created with mode 0700 if it is
// missing, where the old process listens for the new one (on a socket
// named after its PID). Default: "hotline-handoff-<uid>" in
// [os.TempDir].
func WithHandoffDir(dir string) HandoffOption {
	return func(c *handoffConfig) { c.dir = dir }
}

// WithHandoffTimeout bounds the old process's side of a handoff, from the
// new process's connection to its acknowledgement; past it, everything is
// resumed. Default: [DefaultHandoffTimeout]; d <= 0 keeps the default.
func WithHandoffTimeout(d time.Duration) HandoffOption {
	return func(c *handoffConfig) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithRestoreSpawn gives the spawn options of each machine restored by
// [Handoff.Receive], by its key: a link to its supervisor, a registered
// name. Default: none.
func WithRestoreSpawn(f func(key string) []actor.SpawnOption) HandoffOption {
	return func(c *handoffConfig) { c.spawn = f }
}

// WithHandoffFlags gives the machines restored by [Handoff.Receive] the
// feature flags their handlers read ([fsm.WithFlags]; a *flags.Set is a
// FlagSource). Without it, a Handoff tied to a release handler
// ([WithReleaseHandler]) gives them the handler's set ([WithFlags]), and
// any other reads every flag off.
//
// That set, if it is a *flags.Set (or has its List and Restore methods),
// also travels: the old process hands its flags over with the machines,
// and Receive merges them into the new process's set before it restores
// any machine ([flags.Set.Restore]: a value set outside the flag file
// survives, with who set it and when; a value from the file is the new
// process's file's). Load the flag file before Receive.
func WithHandoffFlags(src fsm.FlagSource) HandoffOption {
	return func(c *handoffConfig) { c.flags = src }
}

// flagCarrier is a flag set that a handoff carries: a *flags.Set.
type flagCarrier interface {
	List() []flags.Status
	Restore(carried []flags.Status) ([]flags.Status, error)
}

// carriedFlags returns the flag set that the handoff carries: the one it
// gives restored machines, if it is a flagCarrier; nil for none.
func (h *Handoff) carriedFlags() flagCarrier {
	if h.cfg.flags != nil {
		c, _ := h.cfg.flags.(flagCarrier)
		return c
	}
	if h.cfg.release != nil {
		if fl := h.cfg.release.Flags(); fl != nil {
			return fl
		}
	}
	return nil
}

// format returns the format version of a handoff starting now: the oldest
// that carries what this Handoff has to hand over, so that a process of
// an older build can take over when nothing needs a newer one. Format 3
// if it carries a flag set or has machines (whose running timeouts count
// from the capture instant that only format 3 carries, and whose fired
// timeouts keep their place among the queued events only there); format
// 2 if it is tied to a release handler; else 1.
func (h *Handoff) format() uint16 {
	h.mu.Lock()
	machines := h.machines.len() > 0
	h.mu.Unlock()
	switch {
	case h.carriedFlags() != nil || machines:
		return min(h.cfg.format, 3)
	case h.cfg.release != nil:
		return min(h.cfg.format, 2)
	}
	return min(h.cfg.format, 1)
}

// NewHandoff returns the Handoff of r's process, whose machines run in sys.
// From now on, r's upgrades hand the registered machines and connections to
// the new process. It panics if r already has a Handoff.
func NewHandoff(r *Restarter, sys *actor.System, opts ...HandoffOption) (*Handoff, error) {
	cfg := handoffConfig{
		dir:       filepath.Join(os.TempDir(), "hotline-handoff-"+strconv.Itoa(os.Getuid())),
		timeout:   DefaultHandoffTimeout,
		format:    handoff.Version,
		minFormat: handoff.MinVersion,
		parentPID: os.Getppid,
		clock:     monotonicNow,
		successor: isChild,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.ensureDir(); err != nil {
		return nil, err
	}
	h := &Handoff{
		r: r, sys: sys, cfg: cfg, log: r.log,
		codes: make(map[string][]fsm.Code),
	}
	for _, c := range cfg.codes {
		h.codes[c.Machine()] = append(h.codes[c.Machine()], c)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.handoff != nil {
		panic("upgrade: a second Handoff for one Restarter")
	}
	r.handoff = h
	return h, nil
}

// maxSocketPath is the longest path a Unix socket can be bound to on
// Linux (sun_path holds 108 bytes with the terminating zero).
const maxSocketPath = 107

// maxPIDDigits is the number of digits of the largest PID Linux gives
// (4194304, pid_max's limit).
const maxPIDDigits = 7

// ensureDir makes the handoff directory, mode 0700, if it is missing, and
// checks that it is private and that a socket named after any PID fits in
// a Unix socket's path.
func (c *handoffConfig) ensureDir() error {
	if n := len(filepath.Join(c.dir, "handoff-"+strings.Repeat("9", maxPIDDigits)+".sock")); n > maxSocketPath {
		return fmt.Errorf("upgrade: handoff dir %s: too long for a Unix socket's path (%d bytes with the socket's name, at most %d)", c.dir, n, maxSocketPath)
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return fmt.Errorf("upgrade: handoff dir: %w", err)
	}
	if fi, err := os.Stat(c.dir); err != nil {
		return fmt.Errorf("upgrade: handoff dir: %w", err)
	} else if !fi.IsDir() {
		return fmt.Errorf("upgrade: handoff dir %s is not a directory", c.dir)
	} else if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("upgrade: handoff dir %s is open to others (%v)", c.dir, fi.Mode().Perm())
	}
	return nil
}

// Manage registers a machine started with [fsm.Start] for the handoff,
// under a key unique in this process (a session ID). It returns
// ErrDuplicateKey for a key already managed.
func (h *Handoff) Manage(key string, ref actor.Ref) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.machines.add(key, ref) {
		return fmt.Errorf("%w: machine %q", ErrDuplicateKey, key)
	}
	return nil
}

// Unmanage forgets a machine, when it stops. Forgetting a key that is not
// managed does nothing.
func (h *Handoff) Unmanage(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.machines.remove(key)
}

// Machine returns the managed machine of key.
func (h *Handoff) Machine(key string) (actor.Ref, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.machines.get(key)
}

// Adopt registers a connection for the handoff, under a key unique in this
// process; call it when the service accepts the connection (or, in a new
// process, for each [RestoredConn]). It returns ErrDuplicateKey for a key
// already adopted, and an error for a Conn without Pause or Resume or whose
// connection has no descriptor to pass on.
func (h *Handoff) Adopt(key string, c Conn) error {
	if c.Pause == nil || c.Resume == nil {
		return fmt.Errorf("upgrade: adopt %q: Pause and Resume are required", key)
	}
	if _, err := connFile(c.Conn); err != nil {
		return fmt.Errorf("upgrade: adopt %q: %w", key, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.conns.add(key, c) {
		return fmt.Errorf("%w: connection %q", ErrDuplicateKey, key)
	}
	return nil
}

// Release forgets a connection, when the service closes it. Forgetting a
// key that is not adopted does nothing.
func (h *Handoff) Release(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.conns.remove(key)
}

// socketPath is where the process of pid listens for its successor.
func (h *Handoff) socketPath(pid int) string {
	return filepath.Join(h.cfg.dir, "handoff-"+strconv.Itoa(pid)+".sock")
}
