package upgrade

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/flags"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/internal/handoff"
)

// sending is the old process's side of one handoff, for one upgrade
// attempt: it listens for the new process, and serve runs the exchange.
type sending struct {
	h      *Handoff
	ln     *net.UnixListener
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	// Set by serve before done is closed.
	err         error // why the exchange failed; nil once acknowledged
	acked       bool
	connected   bool
	conns       []Conn      // paused, in order
	connKeys    []string    // of conns
	machines    []actor.Ref // suspended
	machineKeys []string    // of machines
	pause       time.Duration
	steps       []time.Duration // since the start: paused, suspended and imaged, sent
	held        []*listener     // held back since the pause
	queued      int             // events imaged in the machines' mailboxes
	flags       int             // feature flags handed over
	unread      int             // bytes read from the connections and not handled

	released []Conn // paused, then released by the service: resumed only on a failure

	// letGo lets go of the release handler's upgrades (WithReleaseHandler),
	// held from before the pause: by resume, or never (the process exits).
	letGo func()

	resumedMachines, resumedConns int // counted by resume
}

// pausedConn is a connection paused for the handoff.
type pausedConn struct {
	key    string
	c      Conn // as adopted when the pause ended
	unread []byte
}

// pauseConns pauses every adopted connection, and returns those to hand
// over, with the managed machines (keys and refs), in the order of their
// registration. A request in hand when the pause begins runs to its end,
// and may register what it made: a connection adopted or adopted again
// (with a new owner), a machine managed. So the registries are read again
// once every pause has returned: a connection adopted since is paused in
// turn, one adopted again travels as it is now, one released stays here,
// and the machines are read last. A key adopted again with another
// connection than the one sent in phase one (under sent) stays here.
// The connections paused are recorded in s as they are, for resume.
func (s *sending) pauseConns(ctx context.Context, sent map[string]net.Conn) ([]pausedConn, []string, []actor.Ref, error) {
	h := s.h
	var (
		out    []pausedConn
		at     = make(map[string]int) // index in out by key
		mark   uint64
		mkeys  []string
		refs   []actor.Ref
		rounds int
	)
	for {
		h.mu.Lock()
		changed := h.conns.after(mark)
		mark = h.conns.mark()
		var keys []string
		var round []Conn
		for _, k := range changed {
			c, _ := h.conns.get(k)
			i, paused := at[k]
			if paused && out[i].c.Conn == c.Conn {
				out[i].c = c // adopted again, with a new owner or meta
				continue
			}
			if nc, ok := sent[k]; paused || (ok && nc != c.Conn) {
				h.log.Warn("upgrade: handoff: a key adopted again with another connection; that one stays here", "conn", k)
				continue
			}
			keys, round = append(keys, k), append(round, c)
		}
		if len(keys) == 0 {
			// Nothing new: what the pauses left is what travels. A
			// connection released meanwhile stays here.
			kept := out[:0]
			for _, pc := range out {
				if c, ok := h.conns.get(pc.key); ok && c.Conn == pc.c.Conn {
					kept = append(kept, pc)
					s.conns = append(s.conns, pc.c)
					s.connKeys = append(s.connKeys, pc.key)
				} else {
					s.released = append(s.released, pc.c)
				}
			}
			out = kept
			mkeys = h.machines.keys()
			refs = make([]actor.Ref, len(mkeys))
			for i, k := range mkeys {
				refs[i], _ = h.machines.get(k)
			}
			h.mu.Unlock()
			break
		}
		h.mu.Unlock()
		rounds++
		if err := ctx.Err(); err != nil {
			for _, pc := range out {
				s.conns = append(s.conns, pc.c) // resumed by serve
			}
			return nil, nil, nil, fmt.Errorf("upgrade: handoff: pause connections: %w", err)
		}

		unread := make([][]byte, len(round))
		paused := make([]bool, len(round))
		// A Pause mostly waits for its reader's goroutine to be woken and
		// to answer: many at once, so that the pause is bound by CPU, not
		// by the latency of one wake-up after the other.
		err := parallelN(len(round), pauseWorkers, func(i int) error {
			b, err := round[i].Pause(ctx)
			if errors.Is(err, net.ErrClosed) {
				return nil // it ended meanwhile: nothing to hand over
			}
			if err != nil {
				return fmt.Errorf("upgrade: handoff: pause connection %q: %w", keys[i], err)
			}
			unread[i], paused[i] = b, true
			return nil
		})
		for i, ok := range paused {
			if ok {
				at[keys[i]] = len(out)
				out = append(out, pausedConn{key: keys[i], c: round[i], unread: unread[i]})
			}
		}
		if err != nil {
			for _, pc := range out {
				s.conns = append(s.conns, pc.c) // resumed by serve
			}
			return nil, nil, nil, err
		}
	}
	if rounds > 1 {
		h.log.Info("upgrade: handoff: connections adopted during the pause were paused in turn", "rounds", rounds)
	}
	return out, mkeys, refs, nil
}

// holdListeners holds back every listener (see listener.hold) and returns
// them, once the connections they had just returned are registered, or
// acceptGrace after it began (one grace for all the listeners).
func (r *Restarter) holdListeners() []*listener {
	r.mu.Lock()
	ls := slices.Clone(r.listeners)
	r.mu.Unlock()
	deadline := time.Now().Add(acceptGrace) // one grace for all: each listener's of its own added up
	for _, l := range ls {
		if late := l.hold(max(time.Until(deadline), 0)); late > 0 {
			r.log.Warn("upgrade: handoff: connections accepted before the handoff were not set up in time; they stay here and drain",
				"addr", l.Addr().String(), "conns", late, "waited", acceptGrace)
		}
	}
	return ls
}

// acceptGrace is how long a handoff waits for the accept loops to set up
// the connections their listeners returned just before it (see
// listener.hold): an accept loop registers a connection and its machine,
// then calls Accept again.
const acceptGrace = time.Second

// endGrace is how long a failed attempt waits for the exchange to end on its
// own before cutting it short.
const endGrace = time.Second

// beginHandoff starts listening for the new process of an attempt, if this
// Restarter has a Handoff; it returns nil otherwise. It fails, wrapping
// ErrHandoff, when it cannot listen (the directory was removed and cannot
// be made again, or was opened to others): the attempt is then refused, for
// a new process started without the state would leave every machine to
// drain and die here.
func (r *Restarter) beginHandoff() (*sending, error) {
	r.mu.Lock()
	h := r.handoff
	r.mu.Unlock()
	if h == nil {
		return nil, nil
	}
	s := &sending{h: h, done: make(chan struct{})}
	// A temporary-file cleaner may have removed the directory since
	// NewHandoff: make it again, as privately.
	if err := h.cfg.ensureDir(); err != nil {
		return nil, fmt.Errorf("%w: cannot listen for the new process: %w", ErrHandoff, err)
	}
	path := h.socketPath(os.Getpid())
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: cannot listen for the new process: %w", ErrHandoff, err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("%w: cannot listen for the new process: %w", ErrHandoff, err)
	}
	s.ln = ln
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.serve()
	return s, nil
}

// end finishes the handoff of an attempt whose tableflip upgrade returned
// upgradeErr: on success it lets go of what was sent, else it resumes
// everything. It returns the attempt's error.
func (s *sending) end(upgradeErr error) error {
	if s == nil {
		return upgradeErr
	}
	// A new process that is ready has finished the exchange; one that
	// failed may have left serve waiting.
	_ = s.ln.Close() // closing twice is harmless; the file is unlinked
	if upgradeErr != nil {
		// A new process that died has left its last words in the socket
		// (a refusal, a reason): read them, unless it takes too long.
		t := time.AfterFunc(endGrace, s.cancel)
		defer t.Stop()
	}
	<-s.done
	s.cancel()
	h := s.h
	if upgradeErr == nil && s.acked {
		for _, c := range s.conns {
			// The new process holds its own descriptor: closing ours
			// neither shuts the connection down nor resets it.
			if err := c.Conn.Close(); err != nil {
				h.log.Warn("upgrade: handoff: close handed-off connection", "err", err)
			}
		}
		// Stopped on purpose, not killed: an orderly reason that the
		// System does not log and a supervisor does not restart a
		// transient child for. A done context asks without waiting.
		asked, cancel := context.WithCancel(context.Background())
		cancel()
		for _, ref := range s.machines {
			_ = actor.Stop(asked, ref, ErrHandedOff) // it may have exited meanwhile
		}
		// Forget what was sent; anything registered since (a connection
		// accepted in the instant of the hold) stays and drains here.
		h.mu.Lock()
		for _, k := range s.connKeys {
			h.conns.remove(k)
		}
		for _, k := range s.machineKeys {
			h.machines.remove(k)
		}
		h.mu.Unlock()
		h.log.Info("upgrade: handoff: state handed over", "machines", len(s.machines), "conns", len(s.conns), "pause", s.pause, "steps", s.steps, "queued", s.queued, "unread", s.unread, "flags", s.flags)
		return nil
	}
	s.resume()
	machines, conns := s.resumedMachines, s.resumedConns
	switch {
	case upgradeErr != nil && s.connected:
		h.log.Error("upgrade: handoff: new process failed; machines and connections resumed here",
			"err", upgradeErr, "handoff_err", s.err, "machines", machines, "conns", conns)
	case upgradeErr == nil:
		h.log.Warn("upgrade: handoff: new process took over without the state; it drains here", "err", s.err)
	}
	return upgradeErr
}

// resume puts back what serve paused, machines first, listeners last.
func (s *sending) resume() {
	defer func() {
		for _, l := range s.held {
			l.release()
		}
		s.held = nil
	}()
	ctx := context.Background()
	s.resumedMachines += len(s.machines)
	s.resumedConns += len(s.conns)
	for _, ref := range s.machines {
		if err := actor.Resume(ctx, ref); err != nil && !errors.Is(err, actor.ErrNoProc) {
			s.h.log.Error("upgrade: handoff: resume machine", "machine", ref, "err", err)
		}
	}
	for _, c := range s.conns {
		c.Resume()
	}
	for _, c := range s.released {
		c.Resume()
	}
	s.machines, s.conns, s.machineKeys, s.connKeys, s.released = nil, nil, nil, nil, nil
	if s.letGo != nil {
		s.letGo() // upgrades may run again
		s.letGo = nil
	}
}

// serve runs the exchange with one new process.
func (s *sending) serve() {
	defer close(s.done)
	s.err = s.exchange()
	if s.err != nil && s.connected {
		s.h.log.Warn("upgrade: handoff: exchange failed", "err", s.err)
	}
	if s.err != nil {
		// Serve again at once: the new process cannot take over with
		// this state, and may take until the upgrade timeout to be gone.
		s.resume()
	}
}

func (s *sending) exchange() error {
	h := s.h
	c, err := s.acceptSuccessor()
	if err != nil {
		return fmt.Errorf("upgrade: handoff: no new process connected: %w", err)
	}
	_ = s.ln.Close() // one new process per attempt
	s.connected = true
	defer func() { _ = c.Close() }()
	stop := context.AfterFunc(s.ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	deadline := time.Now().Add(h.cfg.timeout)
	if err := c.SetDeadline(deadline); err != nil {
		return err
	}
	// The oldest format that carries what there is, so that a new
	// process of an older build can take over when nothing needs more.
	format := h.format()
	if err := handoff.WriteHeader(c, format); err != nil {
		return fmt.Errorf("upgrade: handoff: header: %w", err)
	}
	a, reason, err := handoff.ReadAnswer(c)
	switch {
	case err != nil:
		return err
	case a != handoff.Accept:
		return fmt.Errorf("upgrade: handoff: new process refused the state: %s", reason)
	}

	// Phase one: the descriptors of the connections, while this process
	// still serves them (the new one reads none before it is ready).
	h.mu.Lock()
	order := h.conns.keys()
	sent := make(map[string]net.Conn, len(order)) // the connection sent under each key
	pre := handoff.State{Conns: make([]handoff.Conn, 0, len(order))}
	fds := make([]int, 0, len(order))
	for _, k := range order {
		// A copy of the descriptor, so that the service may close the
		// connection meanwhile, and the lock is not held while sending.
		c, _ := h.conns.get(k)
		fd, err := dupConn(c.Conn)
		if err != nil {
			h.log.Warn("upgrade: handoff: connection sent with the state", "conn", k, "err", err)
			continue
		}
		pre.Conns = append(pre.Conns, handoff.Conn{Key: k})
		sent[k] = c.Conn
		fds = append(fds, fd)
	}
	h.mu.Unlock()
	err = writeStateVersion(c, &pre, fds, format) // was: the newest format, which a build of format 1 refused
	for _, fd := range fds {
		_ = syscall.Close(fd)
	}
	if err != nil {
		return err
	}
	a, reason, err = handoff.ReadAnswer(c)
	switch {
	case err != nil:
		return err
	case a != handoff.Accept:
		return fmt.Errorf("upgrade: handoff: new process could not take the connections: %s", reason)
	}

	// Hold the listeners back (connections wait in their queues, for the
	// new process), pause the connections (their readers finish the
	// request in hand), then suspend the machines, then image them:
	// nothing changes between the image and the new process.
	ctx, cancel := context.WithDeadline(s.ctx, deadline)
	defer cancel()
	if rh := h.cfg.release; rh != nil {
		// No rollout may move the machines between their images and the
		// old process's exit: wait for one in progress to end, and refuse
		// upgrades from here (ErrHandingOff) until the handoff has ended.
		s.letGo, err = rh.holdUpgrades(ctx)
		if err != nil {
			return err
		}
	}
	start := time.Now()
	s.held = h.r.holdListeners()
	p, mkeys, refs, err := s.pauseConns(ctx, sent)
	if err != nil {
		return err
	}
	s.steps = append(s.steps, time.Since(start))
	images := make([]fsm.Image, len(refs))
	alive := make([]bool, len(refs))
	var mu sync.Mutex
	err = parallel(len(refs), func(i int) error {
		err := actor.Suspend(ctx, refs[i])
		if errors.Is(err, actor.ErrNoProc) {
			return nil // it stopped: nothing to hand over
		}
		if err != nil {
			return fmt.Errorf("upgrade: handoff: suspend machine %q: %w", mkeys[i], err)
		}
		mu.Lock()
		s.machines = append(s.machines, refs[i])
		s.machineKeys = append(s.machineKeys, mkeys[i])
		mu.Unlock()
		img, err := fsm.CaptureSuspended(ctx, refs[i])
		if errors.Is(err, actor.ErrNoProc) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("upgrade: handoff: image of machine %q: %w", mkeys[i], err)
		}
		images[i], alive[i] = img, true
		return nil
	})
	if err != nil {
		return err
	}
	s.steps = append(s.steps, time.Since(start))
	// Every timeout's time left counts from one instant, read on the
	// host's monotonic clock, which the new process reads too: it takes
	// the time elapsed since off (format 3).
	captured, capturedMono := time.Now(), h.cfg.clock()
	st := handoff.State{Conns: make([]handoff.Conn, 0, len(p))}
	if format >= 3 {
		st.Captured = capturedMono
	}
	for i, img := range images {
		if alive[i] {
			st.Machines = append(st.Machines, toWire(mkeys[i], img, captured))
			s.queued += len(img.Queued)
		}
	}
	fds = fds[:0]
	for _, pc := range p {
		st.Conns = append(st.Conns, handoff.Conn{Key: pc.key, Owner: pc.c.Owner, Unread: pc.unread, Meta: pc.c.Meta})
		s.unread += len(pc.unread)
		if _, ok := sent[pc.key]; ok {
			continue
		}
		fd, err := connFile(pc.c.Conn)
		if err != nil {
			return fmt.Errorf("upgrade: handoff: connection %q: %w", pc.key, err)
		}
		fds = append(fds, fd) // paused, so open until the end
	}
	if h.cfg.release != nil {
		// Taken with the machines suspended: an upgrade that moves them
		// cannot commit meanwhile.
		st.Releases = h.cfg.release.handoffReleases()
	}
	if fl := h.carriedFlags(); fl != nil && format >= 3 {
		st.Flags = toWireFlags(fl.List())
		s.flags = len(st.Flags)
	}
	if err := writeStateVersion(c, &st, fds, format); err != nil {
		return err
	}
	s.steps = append(s.steps, time.Since(start))
	a, reason, err = handoff.ReadAnswer(c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		stop() // the deadline is ours to clear now
		a, reason, err = s.lastAnswer(c, err)
	}
	switch {
	case err != nil:
		return fmt.Errorf("upgrade: handoff: no acknowledgement: %w", err)
	case a != handoff.Ack:
		return fmt.Errorf("upgrade: handoff: new process could not restore the state: %s", reason)
	}
	s.acked = true
	s.pause = time.Since(start)
	return nil
}

// acceptSuccessor accepts the new process's connection: the first from a
// child of this process (its PID from SO_PEERCRED, its parent from
// /proc), as the process tableflip starts is. Any other process that
// connects (one of the same user that found the socket) is logged and
// closed, and the wait goes on until the attempt ends: taken as the new
// process, it would have the state, and the new process none. Where the
// peer cannot be checked (no peer credentials, no procfs), the first
// connection is taken.
func (s *sending) acceptSuccessor() (*net.UnixConn, error) {
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			return nil, err
		}
		pid, err := peerPID(c)
		child := false
		if err == nil {
			child, err = s.h.cfg.successor(pid)
			if errors.Is(err, errNoPeerCred) {
				s.h.log.Warn("upgrade: handoff: the new process is not checked", "peer_pid", pid, "err", err)
			}
		}
		switch {
		case errors.Is(err, errNoPeerCred):
			return c, nil // not checked on this system
		case err != nil:
			s.h.log.Warn("upgrade: handoff: connection refused: its credentials cannot be read", "err", err)
		case child:
			return c, nil
		default:
			s.h.log.Warn("upgrade: handoff: connection refused: not the new process (not a child of this one)", "peer_pid", pid)
		}
		_ = c.Close()
	}
}

// lastAnswer decides a handoff whose acknowledgement did not come in time
// (the handoff timeout, or the attempt given up): the new process may be
// writing it at this very moment, and an "A" that it writes successfully
// tells it that the state is taken, so it goes on to Ready; if this process
// resumed everything meanwhile, both would run the machines and read the
// connections. So the read side is shut first: from then on the new
// process's writes fail (it stops what it restored and exits), and an
// answer written before is read and counts. It returns timeout if nothing
// had come.
func (s *sending) lastAnswer(c *net.UnixConn, timeout error) (byte, string, error) {
	if s.h.cfg.ackLate != nil {
		s.h.cfg.ackLate()
	}
	if err := c.CloseRead(); err != nil {
		return 0, "", errors.Join(timeout, err)
	}
	if s.h.cfg.ackShut != nil {
		s.h.cfg.ackShut()
	}
	// Shut, so a read no longer waits: it returns what had come, then
	// EOF.
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return 0, "", errors.Join(timeout, err)
	}
	a, reason, err := handoff.ReadAnswer(c)
	if err != nil {
		return 0, "", timeout
	}
	return a, reason, nil
}

func writeStateVersion(c *net.UnixConn, st *handoff.State, fds []int, v uint16) error {
	body, err := handoff.EncodeVersion(st, v)
	if err != nil {
		return err
	}
	return handoff.WriteState(c, body, fds)
}

// connFile returns the descriptor of a connection, which stays open as
// long as the connection is.
func connFile(c net.Conn) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("connection %T has no descriptor", c)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	if err := raw.Control(func(f uintptr) { fd = int(f) }); err != nil {
		return -1, err
	}
	return fd, nil
}

// dupConn returns a close-on-exec copy of a connection's descriptor.
func dupConn(c net.Conn) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("connection %T has no descriptor", c)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, derr := -1, error(nil)
	err = raw.Control(func(f uintptr) {
		r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, f, syscall.F_DUPFD_CLOEXEC, 0)
		if errno != 0 {
			derr = errno
			return
		}
		fd = int(r)
	})
	if err == nil {
		err = derr
	}
	return fd, err
}

// pauseWorkers is how many connections are paused at once.
const pauseWorkers = 1024

// parallel runs f(0) to f(n-1) on a few goroutines (4 × GOMAXPROCS) and
// returns the first error; every call has returned when it does.
func parallel(n int, f func(i int) error) error {
	return parallelN(n, 4*runtime.GOMAXPROCS(0), f)
}

// parallelN is parallel on up to workers goroutines.
func parallelN(n, workers int, f func(i int) error) error {
	workers = min(n, workers)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		next  int
		first error
	)
	for range workers {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil
				mu.Unlock()
				if i >= n || stop {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return first
}

// toWire is the image of a machine as the handoff carries it, each
// timeout's time left counted from captured (the image's own instant is a
// little earlier).
func toWire(key string, img fsm.Image, captured time.Time) handoff.Machine {
	ev := func(e fsm.EventImage) handoff.Event {
		return handoff.Event{Kind: uint8(e.Kind), Name: e.Name, Payload: e.Payload}
	}
	evs := func(es []fsm.EventImage) []handoff.Event {
		var out []handoff.Event
		for _, e := range es {
			out = append(out, ev(e))
		}
		return out
	}
	m := handoff.Machine{
		Key: key, Machine: img.Machine, Version: img.Version, ID: img.ID, Tags: img.Tags,
		State: img.State, Data: img.Data, Postponed: evs(img.Postponed), Queued: evs(img.Queued),
	}
	var since time.Duration
	if !img.Captured.IsZero() {
		since = captured.Sub(img.Captured)
	}
	for _, t := range img.Timeouts {
		w := handoff.Timeout{Kind: uint8(t.Kind), Name: t.Name, Remaining: int64(t.Remaining - since), Event: ev(t.Event)}
		if t.Fired {
			w.Fired = int64(t.Ahead) + 1
		}
		m.Timeouts = append(m.Timeouts, w)
	}
	return m
}

// fromWire is the image of a machine the handoff carried, each timeout's
// time left less elapsed, the time since the state's capture instant.
func fromWire(m handoff.Machine, elapsed time.Duration) fsm.Image {
	ev := func(e handoff.Event) fsm.EventImage {
		return fsm.EventImage{Kind: fsm.Kind(e.Kind), Name: e.Name, Payload: e.Payload}
	}
	evs := func(es []handoff.Event) []fsm.EventImage {
		var out []fsm.EventImage
		for _, e := range es {
			out = append(out, ev(e))
		}
		return out
	}
	img := fsm.Image{
		Snapshot: fsm.Snapshot{Machine: m.Machine, Version: m.Version, State: m.State, Data: m.Data},
		ID:       m.ID, Tags: m.Tags, Postponed: evs(m.Postponed), Queued: evs(m.Queued),
	}
	for _, t := range m.Timeouts {
		ti := fsm.TimeoutImage{Kind: fsm.Kind(t.Kind), Name: t.Name, Remaining: time.Duration(t.Remaining) - elapsed, Event: ev(t.Event)}
		if t.Fired > 0 {
			ti.Fired, ti.Ahead = true, int(t.Fired-1)
		}
		img.Timeouts = append(img.Timeouts, ti)
	}
	return img
}

// toWireFlags is a flag set's List as the handoff carries it.
func toWireFlags(sts []flags.Status) []handoff.Flag {
	out := make([]handoff.Flag, len(sts))
	for i, st := range sts {
		out[i] = handoff.Flag{Flag: st.Flag, Value: st.Value.String(), Old: st.Old.String(), Who: st.Who, File: st.File}
		if !st.When.IsZero() {
			out[i].When = st.When.UnixNano()
		}
	}
	return out
}

// fromWireFlags is the flags the handoff carried, as a flag set takes
// them; a value that does not parse is an error naming the flag.
func fromWireFlags(fs []handoff.Flag) ([]flags.Status, error) {
	out := make([]flags.Status, len(fs))
	for i, f := range fs {
		v, err := flags.ParseValue(f.Value)
		if err == nil {
			out[i].Old, err = flags.ParseValue(f.Old)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: flag %q: %w", handoff.ErrFormat, f.Flag, err)
		}
		out[i].Flag, out[i].Value, out[i].Who, out[i].File = f.Flag, v, f.Who, f.File
		if f.When != 0 {
			out[i].When = time.Unix(0, f.When)
		}
	}
	return out, nil
}
