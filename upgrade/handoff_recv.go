package upgrade

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/internal/handoff"
)

// Receive takes over the machines and connections of the process this one
// replaces: call it after [Restarter.Listen] and before [Restarter.Ready].
// It restores each machine under the code [WithCodes] gave for it
// (through UPGRADE if that is a newer version), manages it under its key,
// and returns the machines and the connections, which the service starts
// serving (their unread bytes first) and adopts again with
// [Handoff.Adopt]; the restored machines run already, and nothing reads
// the connections until the service does; their Read waits until
// [Restarter.Ready] (see [RestoredConn]). In the first process, or when
// the previous process offers no handoff, it returns an empty Restored.
//
// It returns an error wrapping ErrHandoff if anything fails (a format this
// build cannot read, an unknown machine, a machine whose version no chain
// of declared UPGRADE handlers brings to one this binary has, which also
// wraps [ErrNoPath] and is found before any machine starts, an UPGRADE
// that fails): the
// process must then exit without calling Ready, and the previous process
// resumes everything it had. ctx bounds the exchange. After such a
// failure, and in a process started by an upgrade that has not called
// Receive, [Restarter.Ready] refuses (with an error wrapping ErrHandoff):
// a process that became ready without the state would take the sockets
// over and leave every machine to die in the previous one.
func (h *Handoff) Receive(ctx context.Context) (*Restored, error) {
	out, err := h.receive(ctx)
	h.mu.Lock()
	h.received = true
	if h.receiveErr == nil {
		// For good: a Receive tried again finds the previous process's
		// socket gone, "no state", and would let Ready through.
		h.receiveErr = err
	}
	h.mu.Unlock()
	return out, err
}

// readyErr is why this process must not become ready: it was started by
// an upgrade, and its Receive failed or was not called.
func (h *Handoff) readyErr() error {
	if !h.r.f.HasParent() {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case !h.received:
		return fmt.Errorf("%w: ready before Receive: the previous process's machines would be left behind", ErrHandoff)
	case h.receiveErr != nil:
		return fmt.Errorf("upgrade: ready: the state of the previous process was not taken over: %w", h.receiveErr)
	}
	return nil
}

func (h *Handoff) receive(ctx context.Context) (*Restored, error) {
	out := &Restored{Machines: map[string]actor.Ref{}, Conns: map[string]RestoredConn{}}
	if !h.r.f.HasParent() {
		return out, nil
	}
	h.fault("connect")
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", h.socketPath(h.cfg.parentPID()))
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
		h.log.Warn("upgrade: handoff: the previous process offers no state", "err", err)
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: connect: %w", ErrHandoff, err)
	}
	c := nc.(*net.UnixConn)
	defer func() { _ = c.Close() }()
	// The socket must be the previous process's: one of the same user
	// could have put its own in its place.
	if pid, err := peerPID(c); err == nil && pid != h.cfg.parentPID() {
		return nil, fmt.Errorf("%w: the handoff socket is not the previous process's (%d): process %d listens on it", ErrHandoff, h.cfg.parentPID(), pid)
	} else if err != nil && !errors.Is(err, errNoPeerCred) {
		return nil, fmt.Errorf("%w: credentials of the previous process: %w", ErrHandoff, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	v, err := handoff.ReadHeader(c, h.cfg.format)
	if err == nil && v < h.cfg.minFormat {
		err = fmt.Errorf("%w: %d (this build reads %d to %d)", handoff.ErrVersion, v, h.cfg.minFormat, h.cfg.format)
	}
	if err != nil {
		if errors.Is(err, handoff.ErrVersion) || errors.Is(err, handoff.ErrFormat) {
			err = errors.Join(err, handoff.WriteAnswer(c, handoff.Refuse, err.Error()))
		}
		return nil, fmt.Errorf("%w: %w", ErrHandoff, err)
	}
	if err := handoff.WriteAnswer(c, handoff.Accept, ""); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHandoff, err)
	}
	h.fault("accepted")

	// Phase one: the connections' descriptors, sent while the previous
	// process still serves them; made into conns here before the pause.
	body, files, err := handoff.ReadState(c)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHandoff, err)
	}
	pre, err := h.preConns(body, files)
	if err != nil {
		err = errors.Join(err, handoff.WriteAnswer(c, handoff.Fail, err.Error()))
		return nil, fmt.Errorf("%w: %w", ErrHandoff, err)
	}
	if err := handoff.WriteAnswer(c, handoff.Accept, ""); err != nil {
		closeConns(pre)
		return nil, fmt.Errorf("%w: %w", ErrHandoff, err)
	}

	// Phase two: the state, taken after the pause, with the descriptors
	// of connections adopted since phase one.
	body, files, err = handoff.ReadState(c)
	if err != nil {
		closeConns(pre)
		return nil, fmt.Errorf("%w: %w", ErrHandoff, err)
	}
	h.fault("received")
	start := time.Now()
	steps, err := h.restore(ctx, body, pre, files, out)
	if err != nil {
		err = errors.Join(err, handoff.WriteAnswer(c, handoff.Fail, err.Error()))
		return nil, fmt.Errorf("%w: %w", ErrHandoff, err)
	}
	h.fault("restored")
	if err := handoff.WriteAnswer(c, handoff.Ack, ""); err != nil {
		h.unrestore(out)
		return nil, fmt.Errorf("%w: acknowledge: %w", ErrHandoff, err)
	}
	steps = append(steps, time.Since(start))
	h.log.Info("upgrade: handoff: state taken over", "machines", len(out.Machines), "conns", len(out.Conns), "took", time.Since(start), "steps", steps)
	return out, nil
}

// preConns makes the connections of phase one, by key. It closes files.
func (h *Handoff) preConns(body []byte, files []*os.File) (map[string]net.Conn, error) {
	defer closeFiles(files)
	st, err := handoff.Decode(body)
	if err != nil {
		return nil, err
	}
	conns, err := fileConns(st.Conns, files)
	if err != nil {
		return nil, err
	}
	pre := make(map[string]net.Conn, len(conns))
	for i, sc := range st.Conns {
		if _, dup := pre[sc.Key]; dup {
			for _, c := range conns {
				_ = c.Close()
			}
			return nil, fmt.Errorf("%w: connection key %q twice", handoff.ErrFormat, sc.Key)
		}
		pre[sc.Key] = conns[i]
	}
	return pre, nil
}

// fileConns makes a conn of each file, in parallel (each takes a few
// system calls), closing the files as it goes so that the process never
// holds two descriptors per connection. On an error it closes what it made.
func fileConns(cs []handoff.Conn, files []*os.File) ([]net.Conn, error) {
	if len(cs) != len(files) {
		return nil, fmt.Errorf("%w: %d connections, %d descriptors", handoff.ErrFormat, len(cs), len(files))
	}
	conns := make([]net.Conn, len(files))
	err := parallel(len(files), func(i int) error {
		nc, err := net.FileConn(files[i])
		cerr := files[i].Close()
		files[i] = nil
		if err == nil && cerr != nil {
			_ = nc.Close()
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("connection %q: %w", cs[i].Key, err)
		}
		conns[i] = nc
		return nil
	})
	if err != nil {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
		return nil, err
	}
	return conns, nil
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		if f != nil {
			_ = f.Close()
		}
	}
}

func closeConns(m map[string]net.Conn) {
	for _, c := range m {
		_ = c.Close()
	}
}

// restore starts the machines and gathers the connections of the state:
// those of phase one (pre; the others are closed) and the new ones, whose
// descriptors are files, in order. On an error it undoes what it did.
//
// It returns the time since its start at which the state was decoded, the
// connections gathered and the machines started.
func (h *Handoff) restore(ctx context.Context, body []byte, pre map[string]net.Conn, files []*os.File, out *Restored) (steps []time.Duration, err error) {
	defer func() {
		closeFiles(files)
		closeConns(pre) // what was not taken over
		if err != nil {
			h.unrestore(out)
		}
	}()
	t0 := time.Now()
	st, err := handoff.Decode(body)
	if err != nil {
		return nil, err
	}
	steps = append(steps, time.Since(t0))
	out.Machines = make(map[string]actor.Ref, len(st.Machines))
	out.Conns = make(map[string]RestoredConn, len(st.Conns))
	var fresh []handoff.Conn
	for _, sc := range st.Conns {
		if _, ok := pre[sc.Key]; !ok {
			fresh = append(fresh, sc)
		}
	}
	conns, err := fileConns(fresh, files)
	if err != nil {
		return steps, err
	}
	for i, sc := range fresh {
		pre[sc.Key] = conns[i] // phase one did not have these keys
	}
	for _, sc := range st.Conns {
		nc, ok := pre[sc.Key]
		if !ok || out.Conns[sc.Key].Conn != nil {
			return steps, fmt.Errorf("%w: connection key %q twice", handoff.ErrFormat, sc.Key)
		}
		delete(pre, sc.Key)
		out.Conns[sc.Key] = RestoredConn{Conn: newHeldConn(nc, h.r.readyC), Owner: sc.Owner, Unread: sc.Unread, Meta: sc.Meta}
	}
	steps = append(steps, time.Since(t0))
	if err := h.restoreFlags(st.Flags); err != nil {
		return steps, err
	}
	if h.cfg.release != nil {
		// Before the machines: they are restored under its current
		// versions.
		if dropped := h.cfg.release.takeReleases(st.Releases); len(dropped) > 0 {
			h.log.Warn("upgrade: handoff: versions of the previous process that this one lacks", "left_out", dropped)
		}
	}
	// Every machine name and version is planned before any machine
	// starts: one that no version here can read refuses the handoff.
	type nameVersion struct{ machine, version string }
	plans := make(map[nameVersion]restorePlan)
	for _, m := range st.Machines {
		nv := nameVersion{m.Machine, m.Version}
		if _, ok := plans[nv]; ok {
			continue
		}
		p, err := h.plan(ctx, m.Machine, m.Version)
		if err != nil {
			return steps, fmt.Errorf("machine %q: %w", m.Key, err)
		}
		plans[nv] = p
	}
	refs := make([]actor.Ref, len(st.Machines))
	err = parallel(len(st.Machines), func(i int) error {
		m := st.Machines[i]
		p := plans[nameVersion{m.Machine, m.Version}]
		img, err := p.apply(ctx, fromWire(m, 0))
		if err != nil {
			return fmt.Errorf("machine %q: %w", m.Key, err)
		}
		// The time since the capture, read as late as can be: the
		// machine's timeouts are set again as Start returns.
		elapsed := h.elapsed(st.Captured)
		for j := range img.Timeouts {
			img.Timeouts[j].Remaining -= elapsed
		}
		code := p.code
		opts := []fsm.StartOption{fsm.FromImage(img)}
		if h.cfg.spawn != nil {
			opts = append(opts, fsm.WithSpawnOptions(h.cfg.spawn(m.Key)...))
		}
		switch {
		case h.cfg.flags != nil:
			opts = append(opts, fsm.WithFlags(h.cfg.flags))
		case h.cfg.release != nil && h.cfg.release.Flags() != nil:
			opts = append(opts, fsm.WithFlags(h.cfg.release.Flags())) // the handler's, as its machines have
		}
		ref, err := fsm.Start(ctx, h.sys, code, opts...)
		if err != nil {
			return fmt.Errorf("machine %q: %w", m.Key, err)
		}
		refs[i] = ref
		return nil
	})
	for i, ref := range refs {
		if !ref.IsZero() {
			out.Machines[st.Machines[i].Key] = ref
		}
	}
	if err != nil {
		return steps, err
	}
	steps = append(steps, time.Since(t0))
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range st.Machines {
		if h.machines.has(m.Key) {
			return steps, fmt.Errorf("%w: machine %q", ErrDuplicateKey, m.Key)
		}
	}
	for _, m := range st.Machines {
		h.machines.add(m.Key, out.Machines[m.Key])
	}
	return steps, nil
}

// elapsed is the time since the instant captured, on the host's monotonic
// clock: what restored timeouts have run for already. 0 if either reading
// is unknown (a state of format 1 or 2, or a clock that cannot be read),
// and never less (a clock read before it was captured).
func (h *Handoff) elapsed(captured int64) time.Duration {
	if captured == 0 {
		return 0
	}
	now := h.cfg.clock()
	if now == 0 {
		return 0
	}
	return time.Duration(max(now-captured, 0))
}

// restoreFlags merges the flags the previous process handed over into
// this process's set (see WithHandoffFlags), before any machine runs.
func (h *Handoff) restoreFlags(carried []handoff.Flag) error {
	if len(carried) == 0 {
		return nil
	}
	fl := h.carriedFlags()
	if fl == nil {
		h.log.Warn("upgrade: handoff: the previous process's feature flags are not taken over: no flag set (WithHandoffFlags)", "flags", len(carried))
		return nil
	}
	sts, err := fromWireFlags(carried)
	if err != nil {
		return err
	}
	took, err := fl.Restore(sts)
	if err != nil {
		return err
	}
	h.log.Info("upgrade: handoff: feature flags taken over", "flags", len(carried), "kept", len(took))
	return nil
}

// unrestore stops restored machines and closes restored connections (the
// previous process keeps its own descriptors).
func (h *Handoff) unrestore(out *Restored) {
	var wg sync.WaitGroup
	for key, ref := range out.Machines {
		h.Unmanage(key)
		wg.Go(func() { _ = actor.Kill(ref) })
	}
	wg.Wait()
	for _, c := range out.Conns {
		_ = c.Conn.Close()
	}
	clear(out.Machines)
	clear(out.Conns)
}

// fault is the test seam of Receive's stages.
func (h *Handoff) fault(stage string) {
	if h.cfg.fault != nil {
		h.cfg.fault(stage)
	}
}
