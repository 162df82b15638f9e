package exchange

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
)

// ErrDetached is returned by [Switch.Upgrade], [Switch.Detach] and for new
// connections while the switch's lines are detached for a handoff.
var ErrDetached = errors.New("exchange: lines detached for a handoff")

// A Line is a phone line on its way from one switch to another: its
// connection, the bytes read from it and not yet handled, and the snapshot
// of its phone's machine.
type Line struct {
	Number  string       // "" for a line that has not registered
	Conn    net.Conn     // open; the receiving switch owns it
	Unread  []byte       // to be handled before what the connection sends next
	Machine fsm.Snapshot // the phone's machine, suspended between two events
}

// A Handoff is what a switch hands to its successor: every line, and the
// versions in use.
type Handoff struct {
	Version  string // new phones start on it
	Previous string // what a rollback goes back to; "" for none
	Lines    []Line
}

// Detach takes every line out of service for a handoff: each connection's
// reader stops between two lines (after the one it handles), what is
// queued for each is written, and every machine is suspended and
// snapshotted. Connections stay open, machines stay suspended: then
// either [Switch.Release] (the successor adopted them) or
// [Switch.Reattach] (it failed: serve them again, nothing lost). No upgrade
// runs, no phone registers and new connections are refused while the lines
// are detached. Detach waits for each reader to finish its line, which
// the call and stall timeouts bound.
func (s *Switch) Detach(ctx context.Context) (Handoff, error) {
	s.upgrading.Lock() // wait for an upgrade that runs
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		s.upgrading.Unlock()
		return Handoff{}, ErrClosed
	case s.handoff != nil:
		s.mu.Unlock()
		s.upgrading.Unlock()
		return Handoff{}, ErrDetached
	}
	h := &Handoff{Version: s.cfg.versions[s.current].Version()}
	if s.previous >= 0 {
		h.Previous = s.cfg.versions[s.previous].Version()
	}
	s.handoff = h
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.upgrading.Unlock()

	for _, c := range conns {
		c.requestDetach()
	}
	// Every reader stops before any writer does: a reader may be
	// delivering a frame to another line's writer.
	parked := make([]*conn, 0, len(conns))
	for _, c := range conns {
		select {
		case l := <-c.parked:
			h.Lines = append(h.Lines, l)
			parked = append(parked, c)
		case <-c.finished: // it ended on its own meanwhile
		}
	}
	for _, c := range parked {
		close(c.flush)
	}
	for _, c := range conns {
		<-c.finished
	}
	for i := range h.Lines {
		l := &h.Lines[i]
		if l.Number == "" {
			continue
		}
		snap, err := s.suspend(ctx, l.Number)
		if err != nil {
			return Handoff{}, errors.Join(err, s.Reattach(ctx))
		}
		l.Machine = snap
	}
	s.log.Info("exchange: lines detached", "lines", len(h.Lines))
	return *h, nil
}

func (s *Switch) suspend(ctx context.Context, number string) (fsm.Snapshot, error) {
	l, ok := s.lookup(number)
	if !ok {
		return fsm.Snapshot{}, fmt.Errorf("exchange: detach %s: no machine", number)
	}
	if err := actor.Suspend(ctx, l.ref); err != nil {
		return fsm.Snapshot{}, fmt.Errorf("exchange: detach %s: %w", number, err)
	}
	info, err := fsm.Inspect(ctx, l.ref)
	if err != nil {
		return fsm.Snapshot{}, fmt.Errorf("exchange: detach %s: %w", number, err)
	}
	return info.Snapshot(), nil
}

// Reattach serves detached lines again, after a handoff that failed: the
// machines resume, each connection's reader goes on from the bytes it had
// read.
func (s *Switch) Reattach(ctx context.Context) error {
	s.mu.Lock()
	h := s.handoff
	s.mu.Unlock()
	if h == nil {
		return nil
	}
	var errs []error
	for _, l := range h.Lines {
		if ln, ok := s.lookup(l.Number); ok && l.Number != "" {
			if err := actor.Resume(ctx, ln.ref); err != nil && !errors.Is(err, actor.ErrNotSuspended) {
				errs = append(errs, fmt.Errorf("exchange: reattach %s: %w", l.Number, err))
			}
		}
	}
	s.mu.Lock()
	s.handoff = nil
	s.mu.Unlock()
	for _, l := range h.Lines {
		errs = append(errs, s.serveLine(l))
	}
	s.log.Info("exchange: lines reattached", "lines", len(h.Lines))
	return errors.Join(errs...)
}

// Release ends the machines of detached lines without hanging up, once the
// successor adopted them. The connections are the successor's: Release
// does not close them.
func (s *Switch) Release(ctx context.Context) error {
	s.mu.Lock()
	h := s.handoff
	refs := make([]actor.Ref, 0, len(s.lines))
	if h != nil {
		for _, l := range h.Lines {
			if ln, ok := s.lines[l.Number]; ok && l.Number != "" {
				refs = append(refs, ln.ref)
				delete(s.lines, l.Number)
			}
		}
	}
	s.mu.Unlock()
	if h == nil {
		return errors.New("exchange: release: no lines detached")
	}
	var errs []error
	for _, r := range refs {
		if err := actor.Stop(ctx, r, nil); err != nil && !errors.Is(err, actor.ErrNoProc) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Adopt serves the lines of a handoff: it restores each machine from its
// snapshot (on the version it ran, then moved to this switch's current
// version if the handoff's is unknown here), and goes on reading each
// connection from the bytes the previous switch had read. The versions in
// use become the handoff's, when this switch has them.
func (s *Switch) Adopt(ctx context.Context, h Handoff) error {
	s.upgrading.Lock()
	defer s.upgrading.Unlock()
	s.mu.Lock()
	if i, err := s.index(h.Version); err == nil {
		s.current = i
	}
	if i, err := s.index(h.Previous); err == nil && h.Previous != "" {
		s.previous = i
	}
	current := s.current
	s.mu.Unlock()
	var errs []error
	for _, l := range h.Lines {
		if l.Number != "" {
			if err := s.restore(ctx, l, current); err != nil {
				errs = append(errs, err, l.Conn.Close())
				continue
			}
		}
		errs = append(errs, s.serveLine(l))
	}
	s.log.Info("exchange: lines adopted", "lines", len(h.Lines), "version", s.cfg.versions[current].Version())
	return errors.Join(errs...)
}

func (s *Switch) restore(ctx context.Context, l Line, current int) error {
	from, err := s.index(l.Machine.Version)
	if err != nil {
		return fmt.Errorf("exchange: adopt %s: %w", l.Number, err)
	}
	ref, err := fsm.Start(ctx, s.sys, s.cfg.versions[from], fsm.WithID(l.Number), fsm.FromSnapshot(l.Machine))
	if err != nil {
		return fmt.Errorf("exchange: adopt %s: %w", l.Number, err)
	}
	if from != current {
		var opts []fsm.ChangeOption
		if current < from {
			opts = append(opts, fsm.AsDowngrade())
		}
		if err := fsm.ChangeCode(ctx, ref, s.cfg.versions[current], opts...); err != nil {
			return errors.Join(fmt.Errorf("exchange: adopt %s: %w", l.Number, err), actor.Stop(ctx, ref, nil))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, taken := s.lines[l.Number]; taken {
		return errors.Join(fmt.Errorf("exchange: adopt %s: %w", l.Number, ErrNumberTaken), actor.Stop(ctx, ref, nil))
	}
	s.lines[l.Number] = &line{ref: ref}
	return nil
}

// serveLine serves a handed-over connection, bound to its number's line.
func (s *Switch) serveLine(l Line) error {
	c := newConn(s, l.Conn)
	c.adopted, c.number, c.unread = true, l.Number, l.Unread
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.Join(ErrClosed, l.Conn.Close())
	}
	if ln, ok := s.lines[l.Number]; ok && l.Number != "" {
		ln.c = c
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		c.run()
	}()
	return nil
}
