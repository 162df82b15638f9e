package upgrade

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hotline-go/hotline/flags"
)

// The admin API: JSON lines over a Unix socket. A client writes one
// request line and reads response lines until one has "done": true; a
// long move sends "progress" lines first. One request per connection.
//
//	> {"op":"upgrade","machine":"phone","to":"v2","who":"alice"}
//	< {"progress":{"phase":"suspended","done":10000,"total":10000}}
//	< {"progress":{"phase":"changed","done":10000,"total":10000}}
//	< {"progress":{"phase":"resumed","done":10000,"total":10000}}
//	< {"done":true,"report":{...}}
//
// Ops: "status", "upgrade" (with "dry_run": true for a dry run),
// "dry-run", "rollback", "confirm", "shadow-report" and "end-shadow"
// (machine: the report of its shadow). An upgrade, a dry run or a
// rollback may name its strategy ([StrategySpec]; default all at once):
//
//	> {"op":"upgrade","machine":"phone","to":"v2","strategy":{"name":"canary","canary":3,"window":"3s"}}
//
// Op "flags" lists, gets, sets or reloads feature flags (see [WithFlags]).

// maxAdminLine bounds a request line.
const maxAdminLine = 64 << 10

// adminWriteTimeout is how long a write of an answer may block on a client
// that does not read before the rest of the answer is dropped.
const adminWriteTimeout = 5 * time.Second

// adminProgressQueue bounds the progress lines waiting for a client.
const adminProgressQueue = 256

// AdminRequest is one request to the admin API.
type AdminRequest struct {
	Op       string        `json:"op"`
	Machine  string        `json:"machine,omitempty"`
	To       string        `json:"to,omitempty"`
	Who      string        `json:"who,omitempty"`
	DryRun   bool          `json:"dry_run,omitempty"`
	Selector Selector      `json:"selector,omitzero"`
	Strategy *StrategySpec `json:"strategy,omitempty"`

	// Op "flags": the flag to get or set, its new value (on, off or N%),
	// or a reload of the flag file.
	Flag   string `json:"flag,omitempty"`
	Value  string `json:"value,omitempty"`
	Reload bool   `json:"reload,omitempty"`
}

// StrategySpec names a [Strategy] and its parameters in an [AdminRequest];
// [StrategySpec.Strategy] makes the Strategy. Name is "all" ([AllAtOnce];
// also the empty name), "rolling" ([Rolling]: Batch machines at a time,
// Window the pause between batches), "canary" ([Canary]: Canary
// machines, or Percent % of them, watched for Window), "new-sessions"
// ([NewSessions]: Share % of the new machines, 0 to 100) or "shadow"
// ([Shadow]: for Window, if given, else until ended). Window is a
// duration in the syntax of [time.ParseDuration] ("3s").
type StrategySpec struct {
	Name    string  `json:"name"`
	Batch   int     `json:"batch,omitempty"`
	Canary  int     `json:"canary,omitempty"`
	Percent float64 `json:"percent,omitempty"`
	Window  string  `json:"window,omitempty"`
	Share   float64 `json:"share,omitempty"`
}

// Strategy returns the strategy s describes, or an error wrapping
// ErrBadRequest that names the field that is wrong: an unknown name, a
// window that does not parse, a negative count, a percentage outside
// (0, 100], or a parameter the strategy does not take.
func (s StrategySpec) Strategy() (Strategy, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: strategy %q: %s", ErrBadRequest, s.Name, fmt.Sprintf(format, a...))
	}
	var window time.Duration
	if s.Window != "" {
		d, err := time.ParseDuration(s.Window)
		if err != nil || d < 0 {
			return nil, bad("window %q: want a duration such as 3s", s.Window)
		}
		window = d
	}
	takes := func(batch, canary, window bool) error {
		switch {
		case s.Batch != 0 && !batch:
			return bad("takes no batch")
		case (s.Canary != 0 || s.Percent != 0) && !canary:
			return bad("takes no canary count or percent")
		case s.Window != "" && !window:
			return bad("takes no window")
		case s.Share != 0 && s.Name != "new-sessions":
			return bad("takes no share")
		}
		return nil
	}
	switch s.Name {
	case "", "all":
		if err := takes(false, false, false); err != nil {
			return nil, err
		}
		return AllAtOnce(), nil
	case "rolling":
		if err := takes(true, false, true); err != nil {
			return nil, err
		}
		if s.Batch < 0 {
			return nil, bad("batch %d: want at least 1 (or 0 for 1)", s.Batch)
		}
		return Rolling(s.Batch, RollingPause(window)), nil
	case "canary":
		if err := takes(false, true, true); err != nil {
			return nil, err
		}
		switch {
		case s.Canary < 0:
			return nil, bad("canary %d: want at least 1 (or 0 for 1)", s.Canary)
		case s.Percent < 0 || s.Percent > 100:
			return nil, bad("percent %v: want (0, 100]", s.Percent)
		case s.Canary != 0 && s.Percent != 0:
			return nil, bad("give a canary count or a percent, not both")
		}
		opts := []CanaryOption{CanaryCount(s.Canary), CanaryPercent(s.Percent)}
		if window > 0 {
			opts = append(opts, CanaryWindow(window))
		}
		return Canary(opts...), nil
	case "new-sessions":
		if err := takes(false, false, false); err != nil {
			return nil, err
		}
		if s.Share < 0 || s.Share > 100 || s.Share != s.Share {
			return nil, bad("share %v: want [0, 100]", s.Share)
		}
		return NewSessions(s.Share), nil
	case "shadow":
		if err := takes(false, false, true); err != nil {
			return nil, err
		}
		return Shadow(ShadowWindow(window)), nil
	}
	return nil, bad("unknown strategy (want all, rolling, canary, new-sessions or shadow)")
}

// AdminResponse is one line of an answer: progress, or the final line
// (Done) with the result or the error.
type AdminResponse struct {
	Progress *Progress       `json:"progress,omitempty"`
	Done     bool            `json:"done,omitempty"`
	Status   []MachineStatus `json:"status,omitempty"`
	Report   *Report         `json:"report,omitempty"`
	DryRun   *DryRunReport   `json:"dry_run,omitempty"`
	Flags    []flags.Status  `json:"flags,omitempty"` // op "flags"
	Shadow   *ShadowReport   `json:"shadow,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// ErrBadRequest is returned (wrapped) for an admin request that does not
// decode or names no known op.
var ErrBadRequest = errors.New("upgrade: bad admin request")

// decodeAdminRequest decodes and checks one request line.
func decodeAdminRequest(line []byte) (AdminRequest, error) {
	var req AdminRequest
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return AdminRequest{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if req.Strategy != nil {
		if req.Op != "upgrade" && req.Op != "dry-run" && req.Op != "rollback" {
			return AdminRequest{}, fmt.Errorf("%w: %s takes no strategy", ErrBadRequest, req.Op)
		}
		if _, err := req.Strategy.Strategy(); err != nil {
			return AdminRequest{}, err
		}
	}
	switch req.Op {
	case "status":
	case "upgrade", "dry-run":
		if req.Machine == "" || req.To == "" {
			return AdminRequest{}, fmt.Errorf("%w: %s needs machine and to", ErrBadRequest, req.Op)
		}
	case "rollback", "confirm", "shadow-report", "end-shadow":
		if req.Machine == "" {
			return AdminRequest{}, fmt.Errorf("%w: %s needs machine", ErrBadRequest, req.Op)
		}
	case "flags":
		if err := checkFlagsRequest(req); err != nil {
			return AdminRequest{}, err
		}
	default:
		return AdminRequest{}, fmt.Errorf("%w: unknown op %q", ErrBadRequest, req.Op)
	}
	return req, nil
}

// An AdminOption configures [ReleaseHandler.ServeAdmin].
type AdminOption func(*adminConfig)

type adminConfig struct {
	mode fs.FileMode
	// beforeRename is a test seam: it runs with the socket's temporary
	// path just before the socket is renamed to its public path.
	beforeRename func(tmp string)
}

// WithSocketMode sets the permissions of the admin socket. Default: 0600
// (only the owner may connect).
func WithSocketMode(m fs.FileMode) AdminOption {
	return func(c *adminConfig) { c.mode = m }
}

// ServeAdmin serves the admin API on a Unix socket at path (a stale one
// there is replaced, and the socket is removed on return) until ctx ends,
// then closes the connections and returns nil. There is no TCP listener;
// to serve on another listener, use [ReleaseHandler.ServeAdminListener].
//
// The socket never exists at path with another mode than its own
// ([WithSocketMode]): it is made in a new private directory (mode 0700)
// next to path, given its mode there, and only then renamed to path. That
// directory is removed at once. It needs path's directory to be writable,
// as the socket does, and the socket's temporary path is path's directory
// and at most 15 bytes more, which must fit a socket address (107 bytes
// on Linux) as path must.
func (h *ReleaseHandler) ServeAdmin(ctx context.Context, path string, opts ...AdminOption) error {
	cfg := adminConfig{mode: 0o600}
	for _, o := range opts {
		o(&cfg)
	}
	ln, fi, err := listenAdmin(path, cfg)
	if err != nil {
		return fmt.Errorf("upgrade: admin socket: %w", err)
	}
	defer func() {
		// Remove path only if it is still this socket, not one that a
		// later ServeAdmin put there.
		if now, err := os.Lstat(path); err == nil && os.SameFile(fi, now) {
			_ = os.Remove(path)
		}
	}()
	return h.ServeAdminListener(ctx, ln)
}

// maxUnixPath is the longest path a Unix socket can be bound to on Linux
// (sun_path, less its NUL).
const maxUnixPath = 107

// listenAdmin listens on a Unix socket at path whose mode is cfg.mode from
// the moment it appears there, and returns the listener (which does not
// remove path when closed) and path's file info.
func listenAdmin(path string, cfg adminConfig) (net.Listener, fs.FileInfo, error) {
	dir, err := os.MkdirTemp(filepath.Dir(path), ".s") // mode 0700
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	tmp := filepath.Join(dir, "s")
	if len(tmp) > maxUnixPath {
		return nil, nil, fmt.Errorf("%s: path too long for the socket's temporary name %s (%d bytes, at most %d)", path, tmp, len(tmp), maxUnixPath)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, nil, err
	}
	ln.SetUnlinkOnClose(false) // it moves: ServeAdmin removes path
	fail := func(err error) (net.Listener, fs.FileInfo, error) {
		_ = ln.Close()
		return nil, nil, err
	}
	if err := os.Chmod(tmp, cfg.mode); err != nil {
		return fail(err)
	}
	if cfg.beforeRename != nil {
		cfg.beforeRename(tmp)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		_ = os.Remove(path)
		return fail(err)
	}
	return ln, fi, nil
}

// ServeAdminListener serves the admin API on ln until ctx ends, then closes
// ln and the connections and returns nil; or returns ln's error.
func (h *ReleaseHandler) ServeAdminListener(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	stop := context.AfterFunc(ctx, func() {
		_ = ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
	})
	defer stop()
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			_ = ln.Close()
			return fmt.Errorf("upgrade: admin accept: %w", err)
		}
		mu.Lock()
		conns[c] = true
		mu.Unlock()
		wg.Go(func() {
			defer func() {
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				_ = c.Close()
			}()
			h.serveAdminConn(ctx, c)
		})
	}
}

func (h *ReleaseHandler) serveAdminConn(ctx context.Context, c net.Conn) {
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 4096), maxAdminLine)
	enc := json.NewEncoder(c)
	// A client that does not read its answer for adminWriteTimeout loses
	// the rest of it; the request goes on.
	var wmu sync.Mutex
	gone := false
	send := func(r AdminResponse) {
		wmu.Lock()
		defer wmu.Unlock()
		if gone {
			return
		}
		if c.SetWriteDeadline(time.Now().Add(adminWriteTimeout)) != nil || enc.Encode(r) != nil {
			gone = true
		}
	}
	if !sc.Scan() {
		if errors.Is(sc.Err(), bufio.ErrTooLong) {
			send(AdminResponse{Done: true, Error: fmt.Sprintf("%v: request line too long (over %d bytes)", ErrBadRequest, maxAdminLine)})
			// Read on a little, so that the client gets the answer
			// instead of a reset for the bytes it is still sending.
			if c.SetReadDeadline(time.Now().Add(time.Second)) == nil {
				_, _ = io.CopyN(io.Discard, c, 16<<20)
			}
		}
		return
	}
	// Progress goes through a bounded queue to its own writer, so that a
	// rollout never waits for a client: lines a slow client has no room
	// for are dropped (the final answer is not).
	progress := make(chan Progress, adminProgressQueue)
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		for p := range progress {
			send(AdminResponse{Progress: &p})
		}
	}()
	var pmu sync.Mutex
	closed := false
	onProgress := func(p Progress) {
		pmu.Lock()
		defer pmu.Unlock()
		if closed {
			return
		}
		select {
		case progress <- p:
		default:
		}
	}
	endProgress := func() {
		pmu.Lock()
		closed = true
		close(progress)
		pmu.Unlock()
		<-wrote
	}
	req, err := decodeAdminRequest(sc.Bytes())
	if err != nil {
		endProgress()
		send(AdminResponse{Done: true, Error: err.Error()})
		return
	}
	who := req.Who
	if who == "" {
		who = "admin"
	}
	opts := []MoveOption{By(who), WithSelector(req.Selector), WithProgress(onProgress)}
	if req.Strategy != nil {
		st, _ := req.Strategy.Strategy() // checked by decodeAdminRequest
		opts = append(opts, WithStrategy(st))
	}
	resp := AdminResponse{Done: true}
	switch {
	case req.Op == "status":
		resp.Status = h.Status()
	case req.Op == "dry-run" || (req.Op == "upgrade" && req.DryRun):
		var rep DryRunReport
		rep, err = h.DryRun(ctx, req.Machine, req.To, opts...)
		resp.DryRun = &rep
	case req.Op == "upgrade":
		var rep Report
		rep, err = h.Upgrade(ctx, req.Machine, req.To, opts...)
		resp.Report = &rep
	case req.Op == "rollback":
		var rep Report
		rep, err = h.Rollback(ctx, req.Machine, opts...)
		resp.Report = &rep
	case req.Op == "confirm":
		err = h.Confirm(ctx, req.Machine)
	case req.Op == "flags":
		resp.Flags, err = h.adminFlags(req, who)
	case req.Op == "shadow-report":
		var sr ShadowReport
		sr, err = h.ShadowReport(req.Machine)
		resp.Shadow = &sr
	case req.Op == "end-shadow":
		var sr ShadowReport
		sr, err = h.EndShadow(ctx, req.Machine)
		resp.Shadow = &sr
	}
	if err != nil {
		resp.Error = err.Error()
	}
	endProgress()
	send(resp)
}

// AdminClient talks to the admin API of a [ReleaseHandler] (what `ctl`
// uses). It is safe for concurrent use: each call is one connection.
type AdminClient struct {
	network, addr string
}

// DialAdmin returns a client of the admin socket at path, after checking
// that something answers there.
func DialAdmin(ctx context.Context, path string) (*AdminClient, error) {
	c := &AdminClient{network: "unix", addr: path}
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	if err := conn.Close(); err != nil {
		return nil, fmt.Errorf("upgrade: admin dial: %w", err)
	}
	return c, nil
}

func (c *AdminClient) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, c.network, c.addr)
	if err != nil {
		return nil, fmt.Errorf("upgrade: admin dial: %w", err)
	}
	return conn, nil
}

// Do sends req and returns the final response; progress, if not nil, gets
// each progress line. An error in the final response is returned as an
// error (its text; the sentinels do not cross the socket).
func (c *AdminClient) Do(ctx context.Context, req AdminRequest, progress func(Progress)) (AdminResponse, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return AdminResponse{}, err
	}
	defer context.AfterFunc(ctx, func() { _ = conn.Close() })()
	defer func() { _ = conn.Close() }()
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return AdminResponse{}, fmt.Errorf("upgrade: admin request: %w", err)
	}
	dec := json.NewDecoder(bufio.NewReader(conn))
	for {
		var resp AdminResponse
		if err := dec.Decode(&resp); err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return AdminResponse{}, fmt.Errorf("upgrade: admin response: %w", err)
		}
		if resp.Progress != nil && progress != nil {
			progress(*resp.Progress)
		}
		if resp.Done {
			if resp.Error != "" {
				return resp, fmt.Errorf("upgrade: admin: %s", resp.Error)
			}
			return resp, nil
		}
	}
}

// Status returns the status of every machine name.
func (c *AdminClient) Status(ctx context.Context) ([]MachineStatus, error) {
	resp, err := c.Do(ctx, AdminRequest{Op: "status"}, nil)
	return resp.Status, err
}

// Upgrade asks for an upgrade of every machine of machine to to, streaming
// progress to progress (may be nil).
func (c *AdminClient) Upgrade(ctx context.Context, machine, to, who string, progress func(Progress)) (Report, error) {
	resp, err := c.Do(ctx, AdminRequest{Op: "upgrade", Machine: machine, To: to, Who: who}, progress)
	return deref(resp.Report), err
}

// UpgradeWith sends req as an upgrade (its Op is set to "upgrade"), with
// its strategy (req.Strategy) and selector, streaming progress to progress
// (may be nil): the decisions of the strategy come as progress lines
// (batches, canary verdict, share, shadow counts).
func (c *AdminClient) UpgradeWith(ctx context.Context, req AdminRequest, progress func(Progress)) (Report, error) {
	req.Op = "upgrade"
	resp, err := c.Do(ctx, req, progress)
	return deref(resp.Report), err
}

// ShadowReport asks for the report of the running or last shadow of
// machine.
func (c *AdminClient) ShadowReport(ctx context.Context, machine string) (ShadowReport, error) {
	resp, err := c.Do(ctx, AdminRequest{Op: "shadow-report", Machine: machine}, nil)
	return deref(resp.Shadow), err
}

// EndShadow asks to end the shadow of machine, and returns its report.
func (c *AdminClient) EndShadow(ctx context.Context, machine string) (ShadowReport, error) {
	resp, err := c.Do(ctx, AdminRequest{Op: "end-shadow", Machine: machine}, nil)
	return deref(resp.Shadow), err
}

// DryRun asks for a dry run of an upgrade of machine to to.
func (c *AdminClient) DryRun(ctx context.Context, machine, to string) (DryRunReport, error) {
	resp, err := c.Do(ctx, AdminRequest{Op: "dry-run", Machine: machine, To: to}, nil)
	return deref(resp.DryRun), err
}

// Rollback asks for a rollback of machine.
func (c *AdminClient) Rollback(ctx context.Context, machine, who string, progress func(Progress)) (Report, error) {
	resp, err := c.Do(ctx, AdminRequest{Op: "rollback", Machine: machine, Who: who}, progress)
	return deref(resp.Report), err
}

// Confirm asks to make the current version of machine permanent.
func (c *AdminClient) Confirm(ctx context.Context, machine string) error {
	_, err := c.Do(ctx, AdminRequest{Op: "confirm", Machine: machine}, nil)
	return err
}

func deref[T any](p *T) T {
	if p == nil {
		var z T
		return z
	}
	return *p
}
