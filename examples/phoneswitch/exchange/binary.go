package exchange

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"time"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/examples/phoneswitch/phone"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/supervisor"
	"github.com/hotline-go/hotline/upgrade"
	"github.com/vmihailenco/msgpack/v5"
)

// A binary restart's state handoff ([WithHandoff]). Every connection is
// adopted by the upgrade.Handoff when it is accepted (key "c<pid>-<n>",
// no owner), and again under the same key, owned by its phone's machine
// (managed under its number), when it registers. The Handoff pauses
// every connection, then suspends and images every machine; Pause here
// stops every reader of the switch (the first Pause stops them all), so
// that no reader routes a frame to a line whose writer has already been
// flushed, then flushes its own line's writer.

// LineMeta is the [upgrade.Conn] Meta of a line: what the new process
// needs, beside the machine, to serve it. It crosses processes as msgpack.
type LineMeta struct {
	Number string `msgpack:"number"` // "" for a line that has not registered
}

// pause is one pause of a connection's reader for a handoff.
type pause struct {
	parked chan struct{} // closed by the reader once it stopped; unread is set
	unread []byte
	resume chan struct{} // closed to read again
	gone   chan struct{} // closed when the new process took the connection
}

func (c *conn) currentPause() *pause {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	return c.p
}

// stopRequested reports whether the reader must stop between two lines.
func (c *conn) stopRequested() bool {
	return c.currentPause() != nil
}

// requestPause asks the reader to stop after the line it handles.
func (c *conn) requestPause() *pause {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	if c.p == nil {
		c.p = &pause{parked: make(chan struct{}), resume: make(chan struct{}), gone: make(chan struct{})}
		if err := c.nc.SetReadDeadline(time.Unix(1, 0)); err != nil {
			c.s.log.Debug("exchange: pause", "err", err)
		}
		select { // a reader waiting for Ready (Restore) stops too
		case c.poke <- struct{}{}:
		default:
		}
	}
	return c.p
}

// endPause resumes the reader (gone false) or lets it go (gone true).
func (c *conn) endPause(gone bool) {
	c.pmu.Lock()
	p := c.p
	c.p = nil
	c.pmu.Unlock()
	if p == nil {
		return
	}
	if gone {
		close(p.gone)
		return
	}
	close(p.resume)
}

func (c *conn) handoffKey() string {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	return c.key
}

// handoffConn is c as the upgrade.Handoff sees it.
func (c *conn) handoffConn(number string) (upgrade.Conn, error) {
	meta, err := msgpack.Marshal(LineMeta{Number: number})
	if err != nil {
		return upgrade.Conn{}, fmt.Errorf("exchange: line meta: %w", err)
	}
	return upgrade.Conn{Conn: c.nc, Owner: number, Meta: meta, Pause: c.pauseForHandoff, Resume: c.s.resumeReaders}, nil
}

// pauseForHandoff is the Pause of an [upgrade.Conn]: every reader of the
// switch stops, then c's writer writes what is queued for it. If it fails
// for another reason than c's end, the handoff fails, and it withdraws
// (as the upgrade.Conn contract asks): every reader goes on, the others'
// Resume then finding nothing left to resume.
func (c *conn) pauseForHandoff(ctx context.Context) (unread []byte, err error) {
	defer func() {
		if err != nil && !errors.Is(err, net.ErrClosed) {
			c.s.resumeReaders()
		}
	}()
	if err := c.s.pauseReaders(ctx, c); err != nil {
		return nil, err
	}
	p := c.currentPause()
	if p == nil {
		return nil, fmt.Errorf("exchange: pause: resumed meanwhile")
	}
	select {
	case <-p.parked:
	case <-c.finished:
		return nil, fmt.Errorf("exchange: pause: %w", net.ErrClosed)
	}
	ack := make(chan struct{})
	select {
	case c.syncC <- ack:
	case <-c.done:
		return nil, fmt.Errorf("exchange: pause: %w", net.ErrClosed)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-ack:
	case <-c.done:
		return nil, fmt.Errorf("exchange: pause: %w", net.ErrClosed)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return p.unread, nil
}

// pauseReaders stops every reader between two lines (of, and of every
// connection), and waits until each has stopped or its connection ended,
// and until the hang-ups that Ready started have ended: they, too, write
// to lines and change machines.
func (s *Switch) pauseReaders(ctx context.Context, of *conn) error {
	s.mu.Lock()
	if s.round == nil {
		s.round = make([]*conn, 0, len(s.conns))
		for c := range s.conns {
			s.round = append(s.round, c)
		}
	}
	if !slices.Contains(s.round, of) {
		s.round = append(s.round, of)
	}
	round := s.round
	hangingUp := s.hangingUp
	s.mu.Unlock()
	for _, done := range hangingUp {
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("exchange: pause: hang-ups of restored phones: %w", ctx.Err())
		}
	}
	ps := make([]*pause, len(round))
	for i, c := range round {
		ps[i] = c.requestPause()
	}
	for i, c := range round {
		select {
		case <-ps[i].parked:
		case <-c.finished:
		case <-ctx.Done():
			return fmt.Errorf("exchange: pause: %w", ctx.Err())
		}
	}
	return nil
}

// resumeReaders is the Resume of every [upgrade.Conn]: the handoff failed,
// every reader paused goes on.
func (s *Switch) resumeReaders() {
	s.mu.Lock()
	round := s.round
	s.round = nil
	s.mu.Unlock()
	for _, c := range round {
		c.endPause(false)
	}
	if len(round) > 0 {
		s.log.Info("exchange: handoff failed; lines resumed", "lines", len(round))
	}
}

// HandedOver ends this switch's part after a binary restart handed its
// lines to the new process: the readers of the connections handed over
// end without hanging up (the new process serves them; the Handoff has
// closed this process's copies and stopped the machines), and the others
// (one accepted in the instant of the handoff) are served on, and drain
// as usual. It does nothing if no handoff paused the lines.
func (s *Switch) HandedOver() {
	s.mu.Lock()
	round := s.round
	s.round = nil
	s.mu.Unlock()
	handed := 0
	for _, c := range round {
		// The Handoff closed the connections it sent.
		err := c.nc.SetReadDeadline(time.Unix(1, 0))
		gone := errors.Is(err, net.ErrClosed)
		if gone {
			handed++
		}
		c.endPause(gone)
	}
	s.log.Info("exchange: lines handed over", "lines", handed, "kept", len(round)-handed)
}

// forget removes the line of a connection handed over.
func (s *Switch) forget(c *conn, number string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.lines[number]; ok && l.c == c {
		delete(s.lines, number)
	}
}

// handConn adopts a new connection for the handoff, unregistered.
func (s *Switch) handConn(c *conn) {
	h := s.cfg.handoff
	if h == nil {
		return
	}
	s.mu.Lock()
	s.connSeq++
	key := fmt.Sprintf("c%d-%d", os.Getpid(), s.connSeq)
	s.mu.Unlock()
	s.adoptConn(c, key, "")
}

func (s *Switch) adoptConn(c *conn, key, number string) {
	hc, err := c.handoffConn(number)
	if err == nil {
		err = s.cfg.handoff.Adopt(key, hc)
	}
	if err != nil {
		s.log.Warn("exchange: line not registered for a handoff", "key", key, "err", err)
		return
	}
	c.pmu.Lock()
	c.key = key
	c.pmu.Unlock()
}

// handRegistered adopts again, owned by its machine (managed by
// Switch.register), the connection of a line that just registered.
func (s *Switch) handRegistered(c *conn, number string) {
	h := s.cfg.handoff
	if h == nil {
		return
	}
	key := c.handoffKey()
	if key == "" {
		return // not adopted: it stays in this process
	}
	h.Release(key)
	s.adoptConn(c, key, number)
}

// releaseConn forgets c for the handoff, before it is closed.
func (s *Switch) releaseConn(c *conn) {
	if s.cfg.handoff != nil {
		if key := c.handoffKey(); key != "" {
			s.cfg.handoff.Release(key)
		}
	}
}

// Restore takes over the lines a binary restart handed to this process
// ([upgrade.Handoff.Receive]; call it before [upgrade.Restarter.Ready]):
// each number's machine, already running, is moved under the phones
// supervisor and the release handler, and each connection gets its reader
// and writer. Nothing is done to a line until [Switch.Ready]: until this
// process is ready the previous one may yet resume every line from the
// state it handed over, so the readers wait (then handle first the bytes
// the previous process had read and not handled), the writers write
// nothing, a line whose machine had ended waits to be failed and a machine
// whose connection ended during the handoff waits to be hung up. The lines
// are registered for the next handoff.
func (s *Switch) Restore(ctx context.Context, got *upgrade.Restored) error {
	if got == nil {
		return nil
	}
	// Every line is checked before any is read: a switch that refuses the
	// handoff must not have read a byte (the old process resumes them).
	numbers := make(map[string]string, len(got.Conns))
	for key, rc := range got.Conns {
		var meta LineMeta
		if err := msgpack.Unmarshal(rc.Meta, &meta); err != nil {
			return fmt.Errorf("exchange: restore %s: meta: %w", key, err)
		}
		numbers[key] = meta.Number
	}
	refs, peers, err := s.adoptMachines(ctx, got.Machines)
	if err != nil {
		return err
	}
	s.mu.Lock()
	for number, ref := range refs {
		s.lines[number] = &line{ref: ref, peer: peers[number]}
	}
	// Every line has its connection before any reader routes to it.
	cs := make(map[string]*conn, len(got.Conns))
	owned := make(map[string]bool, len(got.Conns))
	for key, rc := range got.Conns {
		c := newConn(s, rc.Conn)
		c.adopted, c.number, c.unread = true, numbers[key], rc.Unread
		c.gate = s.readyC
		if _, ok := refs[c.number]; ok {
			s.lines[c.number].c = c
		} else if c.number != "" {
			// Its machine ended (it failed) before the handoff could
			// image it: the line fails as after a crash, once this
			// process owns it, and the other lines go on.
			c.orphan = true
			s.log.Warn("exchange: restore: a line whose machine had ended; it gets ERR internal", "conn", key, "number", c.number)
		}
		owned[c.number] = true
		cs[key] = c
	}
	var hangUps []string
	for number := range refs {
		if !owned[number] {
			hangUps = append(hangUps, number)
		}
	}
	s.hangUps = append(s.hangUps, hangUps...)
	ready := s.ready
	s.mu.Unlock()
	var errs []error
	for key, c := range cs {
		if err := s.serveRestored(key, c); err != nil {
			errs = append(errs, err)
		}
	}
	s.log.Info("exchange: lines restored", "lines", len(got.Conns), "phones", len(got.Machines))
	if ready { // restored after Ready: nothing to wait for
		s.startHangUps()
	}
	return errors.Join(errs...)
}

// Ready says that this process owns the lines [Switch.Restore] took over:
// call it once [upgrade.Restarter.Ready] has returned nil (never if it
// failed: the previous process then resumes the lines, and [Switch.Close]
// closes them here without a word). From now on the restored lines are
// read (their unread bytes first) and written, a line whose machine had
// ended gets ERR internal and is closed, and a machine whose line ended
// during the handoff hangs up (its peer gets HANGUP), in goroutines of
// the switch's that Close waits for. Ready does not block; calling it
// again does nothing. A switch that restored nothing need not call it:
// the lines it accepts itself are served at once.
func (s *Switch) Ready() {
	s.mu.Lock()
	if s.ready {
		s.mu.Unlock()
		return
	}
	s.ready = true
	close(s.readyC)
	s.mu.Unlock()
	s.startHangUps()
}

// startHangUps hangs up, in a goroutine, the machines restored without
// their line.
func (s *Switch) startHangUps() {
	s.mu.Lock()
	defer s.mu.Unlock()
	numbers := s.hangUps
	s.hangUps = nil
	if len(numbers) == 0 || s.closed {
		return
	}
	done := make(chan struct{})
	s.hangingUp = append(s.hangingUp, done)
	s.wg.Go(func() {
		defer close(done)
		for _, number := range numbers {
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.callTimeout)
			s.hangUp(ctx, number)
			s.unregister(ctx, nil, number)
			cancel()
		}
	})
}

// adoptMachines puts the machines a binary restart restored under the
// phones supervisor and the release handler: each is suspended, imaged
// (state, data, running timeouts, postponed events and the events in its
// mailbox), stopped, and started again from its image by the handler (on
// its current version), as a child of the supervisor, and managed for the
// next handoff under the same number. Nothing of a machine is lost: an
// event that waited in its mailbox (one whose caller in the old process
// gave up) is sent to it again. It returns the machines, and the phone
// each is in a call with (the last phone a line signalled is not carried:
// a crashed machine's hang-up goes to this one). On an error, the machines
// not yet moved are left running, and every one moved is stopped: the new
// process then fails before Ready, and the old one resumes them all.
func (s *Switch) adoptMachines(ctx context.Context, machines map[string]actor.Ref) (refs map[string]actor.Ref, peers map[string]string, err error) {
	refs = make(map[string]actor.Ref, len(machines))
	peers = make(map[string]string, len(machines))
	fail := func(err error) (map[string]actor.Ref, map[string]string, error) {
		for _, ref := range refs {
			err = errors.Join(err, s.stopPhone(ctx, ref))
		}
		return nil, nil, err
	}
	for number, old := range machines {
		if err := actor.Suspend(ctx, old); err != nil {
			return fail(fmt.Errorf("exchange: restore %s: %w", number, err))
		}
		img, err := fsm.CaptureSuspended(ctx, old)
		if err != nil {
			return fail(errors.Join(fmt.Errorf("exchange: restore %s: %w", number, err), actor.Resume(ctx, old)))
		}
		if err := actor.Stop(ctx, old, actor.Normal); err != nil && !errors.Is(err, actor.ErrNoProc) {
			return fail(fmt.Errorf("exchange: restore %s: %w", number, err))
		}
		if s.cfg.handoff != nil {
			s.cfg.handoff.Unmanage(number)
		}
		ref, err := supervisor.StartChild(ctx, s.sup, startPhone{number: number, img: &img})
		if err == nil && s.cfg.handoff != nil {
			err = s.cfg.handoff.Manage(number, ref)
		}
		if err != nil {
			return fail(fmt.Errorf("exchange: restore %s: %w", number, err))
		}
		refs[number] = ref
		if peers[number], err = phone.Peer(img.Snapshot); err != nil {
			s.log.Warn("exchange: restore: the phone's call", "number", number, "err", err)
		}
	}
	return refs, peers, nil
}

func (s *Switch) serveRestored(key string, c *conn) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.Join(ErrClosed, c.nc.Close())
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	if s.cfg.handoff != nil {
		s.adoptConn(c, key, c.number)
	}
	go func() {
		defer s.wg.Done()
		c.run()
	}()
	return nil
}
