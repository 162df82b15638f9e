package pluginrpc

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/hotline-go/hotline/internal/wire"
)

// Handler serves the calls of a plugin. key is the call's ordering key (a
// machine's identity), method and body what the host sent; the result is
// the body of the answer. An error is sent back as its text (the host
// returns a [*RemoteError]); a panic is recovered and sent back with its
// stack (the host returns a [*PanicError]), and the process goes on.
//
// Calls with the same key run one at a time, in the order the host sent
// them; calls with different keys run concurrently: those on different
// connections of the pool always, those on one connection once one of them
// is slow. ctx ends at the host's deadline for the call, or when the
// plugin stops: a handler that may take long should watch it. body is the
// handler's to keep.
type Handler func(ctx context.Context, key, method string, body []byte) ([]byte, error)

// Manifest is what a plugin serves: one machine, in one or more versions
// of its code.
type Manifest struct {
	Machine  string
	Versions []string
}

// serveConfig holds what tests change on the plugin side.
type serveConfig struct {
	protocol int // the wire protocol version to speak
	// malformed, if set, makes the server answer a request for which it
	// returns true with a malformed frame.
	malformed func(method string) bool
}

// Timeouts of the plugin side.
const (
	// acceptTimeout bounds the wait for the host to connect after Open.
	acceptTimeout = 30 * time.Second
	// authTimeout bounds the wait for the Auth frame on a connection.
	authTimeout = 5 * time.Second
	// orphanGrace is how long a plugin whose event socket closed waits for
	// go-plugin's quit before it returns anyway: its host is gone.
	orphanGrace = 2 * time.Second
	// drainGrace is how long Serve waits for handlers still running when
	// it stops.
	drainGrace = time.Second
)

// Serve serves m with h: it is the whole main of a plugin binary, and
// returns when the host stops the plugin (or has gone away). It returns
// ErrNotLaunched when the process was not started by a Hotline host.
//
// Nothing may write to stdout before Serve: the first line of stdout is
// go-plugin's handshake. Once Serve runs, what the plugin writes to
// os.Stdout and os.Stderr reaches the host's logger.
func Serve(m Manifest, h Handler) error {
	return serve(m, h, serveConfig{protocol: wire.ProtocolVersion})
}

func serve(m Manifest, h Handler, cfg serveConfig) error {
	if m.Machine == "" || len(m.Versions) == 0 {
		return fmt.Errorf("%w: a plugin serves one machine in at least one version: have %+v", ErrManifest, m)
	}
	if os.Getenv(cookieKey) != cookieValue {
		return ErrNotLaunched
	}
	// The plugin's own log, in JSON on the process's stderr, which
	// go-plugin's host side parses into leveled records.
	log := hclog.New(&hclog.LoggerOptions{Output: os.Stderr, JSONFormat: true, Level: hclog.Info})
	o := &opener{manifest: m, cfg: cfg, conns: make(chan accepted, 1), log: log}

	quit := make(chan struct{})
	go func() {
		defer close(quit)
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig: handshake(cfg.protocol),
			Plugins:         plugin.PluginSet{pluginName: &controlPlugin{server: &controlServer{open: o.open, nudge: o.nudge}}},
			Logger:          log,
		})
	}()

	var a accepted
	select {
	case <-quit:
		return nil
	case a = <-o.conns:
	}
	if a.err != nil {
		log.Error("no event socket", "error", a.err)
		return a.err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	servers := make([]*server, len(a.ncs))
	for i, nc := range a.ncs {
		servers[i] = newServer(h, nc, cfg)
	}
	o.servers.Store(&servers)
	done := make(chan error, len(servers))
	for i, s := range servers {
		go func() { done <- s.serve(ctx, a.rds[i]) }()
	}
	closeAll := func() {
		for _, nc := range a.ncs {
			_ = nc.Close()
		}
	}

	// The connections are one transport: the end of any one of them (the
	// host closes them all to stop the plugin, or broke one and kills the
	// process) ends all.
	var err error
	ended, first := 0, false
	select {
	case <-quit:
		cancel()
		closeAll()
	case err = <-done:
		// Only this connection's end says why: the others end because
		// closeAll closed them.
		ended, first = 1, true
		closeAll()
		// The host closed the event socket: it stops the plugin, or it is
		// gone. Wait a little for go-plugin's quit, then go anyway.
		t := time.NewTimer(orphanGrace)
		defer t.Stop()
		select {
		case <-quit:
		case <-t.C:
			log.Warn("event socket closed and no quit from the host: exiting")
		}
		cancel()
	}
	for ; ended < len(servers); ended++ {
		if e := <-done; err == nil && !first {
			err = e
		}
	}
	deadline := time.Now().Add(drainGrace)
	for _, s := range servers {
		s.wait(time.Until(deadline))
	}
	if err != nil {
		log.Error("event socket", "error", err)
	}
	return err
}

// accepted is the pool of authenticated event connections, in the order of
// their index, or why there is none.
type accepted struct {
	ncs []net.Conn
	rds []*wire.Reader
	err error
}

// opener answers the control service's Open: it listens on a socket in the
// host's directory and accepts the connections that present the token, as
// many as the host asked for, each once.
type opener struct {
	manifest Manifest
	cfg      serveConfig
	log      hclog.Logger
	conns    chan accepted
	servers  atomic.Pointer[[]*server] // set once the event socket is served

	mu     sync.Mutex
	opened bool
}

// nudge answers the control service's Nudge for the connection of index i.
func (o *opener) nudge(i int) {
	if ss := o.servers.Load(); ss != nil && i >= 0 && i < len(*ss) {
		(*ss)[i].nudge()
	}
}

func (o *opener) open(helloBytes []byte) ([]byte, error) {
	var hello wire.Hello
	if err := hello.Decode(helloBytes); err != nil {
		return nil, err
	}
	if hello.Protocol != o.cfg.protocol {
		return nil, fmt.Errorf("protocol version mismatch: host speaks %d, plugin speaks %d", hello.Protocol, o.cfg.protocol)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.opened {
		return nil, errors.New("event socket already opened")
	}
	if !filepath.IsAbs(hello.SocketDir) {
		return nil, fmt.Errorf("socket directory %q is not absolute", hello.SocketDir)
	}
	var rnd [wire.TokenSize + 8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	token := rnd[:wire.TokenSize]
	path := filepath.Join(hello.SocketDir, "ev-"+hex.EncodeToString(rnd[wire.TokenSize:]))
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("socket path %q is longer than %d bytes", path, maxSocketPath)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = l.Close()
		return nil, err
	}
	o.opened = true
	go func() { o.conns <- o.accept(l, token, hello.Conns) }()
	w := wire.Welcome{Protocol: o.cfg.protocol, Machine: o.manifest.Machine,
		Versions: o.manifest.Versions, Socket: path, Token: token}
	return w.Append(nil), nil
}

// accept waits for the n connections that present token, one for each
// index from 0 to n-1, then closes the listener (which removes the socket
// file). A connection with a wrong token, or an index out of range or
// taken already, is refused and closed.
func (o *opener) accept(l *net.UnixListener, token []byte, n int) accepted {
	defer func() { _ = l.Close() }()
	a := accepted{ncs: make([]net.Conn, n), rds: make([]*wire.Reader, n)}
	fail := func(err error) accepted {
		for _, nc := range a.ncs {
			if nc != nil {
				_ = nc.Close()
			}
		}
		return accepted{err: err}
	}
	if err := l.SetDeadline(time.Now().Add(acceptTimeout)); err != nil {
		return fail(err)
	}
	for left := n; left > 0; {
		nc, err := l.Accept()
		if err != nil {
			return fail(fmt.Errorf("waiting for the host to connect (%d of %d connections made): %w", n-left, n, err))
		}
		rd := wire.NewReader(nc, 64<<10)
		i, err := authenticate(nc, rd, token)
		if err == nil && (i >= n || a.ncs[i] != nil) {
			err = fmt.Errorf("connection index %d is out of range or taken (pool of %d)", i, n)
		}
		if err != nil {
			o.log.Warn("refused a connection to the event socket", "error", err)
			_ = nc.Close()
			continue
		}
		a.ncs[i], a.rds[i] = nc, rd
		left--
	}
	return a
}

// authenticate reads the Auth frame of a new connection, checks its token,
// and returns the connection's index.
func authenticate(nc net.Conn, rd *wire.Reader, token []byte) (int, error) {
	if err := nc.SetReadDeadline(time.Now().Add(authTimeout)); err != nil {
		return 0, err
	}
	msg, err := rd.Next()
	if err != nil {
		return 0, err
	}
	var a wire.Auth
	if err := a.Decode(msg); err != nil {
		return 0, err
	}
	if subtle.ConstantTimeCompare(a.Token, token) != 1 {
		return 0, errors.New("wrong token")
	}
	return a.Conn, nc.SetReadDeadline(time.Time{})
}

// server is the plugin's end of one event connection of the pool; each
// connection has its own server, with its own reading goroutine, writer and
// keys. The host sends all the calls of a key over one connection, so a
// server sees every call of the keys it serves, and keeps their order.
//
// One goroutine reads requests, and runs each itself when its key is idle:
// a fast handler costs no hand-off to another goroutine (waking one costs
// more than the whole of a short call on a loaded machine). When a handler
// is slow, the host notices (its oldest call has waited nudgeAfter) and
// nudges the plugin through the control plane; nudge hands the reading to a
// new goroutine, so that the slow handler holds up its own key only. Its
// goroutine then runs the requests of its key that arrived meanwhile, in
// order, and ends. A request whose key is busy is queued behind it. So the
// calls of one key run one at a time, in order; the calls of different keys
// run concurrently once a handler is slow; and the reading never waits long
// for a handler, which the host's pipelining relies on.
//
// The plugin has no timer and no watchdog of its own: a periodic timer in
// the plugin process, even every 10ms, made every call about a quarter
// slower (doc/plugins.md).
type server struct {
	h   Handler
	w   *frameWriter
	cfg serveConfig

	strs wire.Strings // the requests' keys and methods; used by the goroutine that reads

	mu    sync.Mutex
	keys  map[string][]wire.Request // keys being run: requests waiting behind the running one
	cur   *reader                   // the goroutine that reads
	ended chan struct{}             // closed when the reading ends
	err   error                     // why the reading ended; nil at end of stream
	wg    sync.WaitGroup
}

func newServer(h Handler, nc net.Conn, cfg serveConfig) *server {
	return &server{h: h, w: newFrameWriter(nc, 0), cfg: cfg, keys: make(map[string][]wire.Request),
		ended: make(chan struct{})}
}

// serve reads requests from rd until the stream ends (nil) or breaks (an
// error), and returns then; handlers may still run (see wait). Handlers get
// contexts derived from ctx.
func (s *server) serve(ctx context.Context, rd *wire.Reader) error {
	s.wg.Add(1)
	go s.read(ctx, rd)
	<-s.ended
	return s.err
}

// reader is a goroutine that reads requests.
type reader struct {
	ctx     context.Context
	rd      *wire.Reader
	running bool // it runs a handler (s.mu)
	handed  bool // the reading was handed to another goroutine (s.mu)
}

// read reads and runs requests until the reading is handed off.
func (s *server) read(ctx context.Context, rd *wire.Reader) {
	defer s.wg.Done()
	r := &reader{ctx: ctx, rd: rd}
	s.mu.Lock()
	s.cur = r
	s.mu.Unlock()
	for {
		if !rd.HasFrame() {
			// Next will wait for more: the answers left in the writer's
			// buffer go out first.
			if err := s.w.flush(); err != nil {
				s.end(fmt.Errorf("writing answers: %w", err))
				return
			}
		}
		msg, err := rd.Next()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				err = nil
			} else {
				err = fmt.Errorf("reading requests: %w", err)
			}
			s.end(err)
			return
		}
		var req wire.Request
		if err := req.DecodeWith(msg, &s.strs); err != nil {
			s.end(err)
			return
		}
		req.Body = append([]byte(nil), req.Body...) // msg is the reader's buffer
		s.mu.Lock()
		if q, busy := s.keys[req.Key]; busy {
			s.keys[req.Key] = append(q, req)
			s.mu.Unlock()
			continue
		}
		s.keys[req.Key] = nil
		r.running = true
		s.mu.Unlock()

		// The answer stays in the writer's buffer while more requests are
		// buffered: the answers to a batch of requests go out together,
		// before this goroutine waits for more (or, if a handler of the
		// batch turns out slow, when the reading is handed off).
		s.run(ctx, &req, true)

		s.mu.Lock()
		r.running = false
		if r.handed {
			s.mu.Unlock()
			_ = s.w.flush() // the reader that took over may be waiting already
			s.drain(ctx, req.Key)
			return
		}
		delete(s.keys, req.Key) // no one read while this goroutine ran: nothing is queued
		s.mu.Unlock()
	}
}

// nudge hands the reading off from a goroutine that runs a handler, and
// writes the answers it left in the buffer. The host calls it (through the
// control plane) when a call has waited long.
func (s *server) nudge() {
	s.mu.Lock()
	r := s.cur
	if r == nil || !r.running || r.handed {
		s.mu.Unlock()
		return
	}
	r.handed = true
	s.cur = nil
	s.wg.Add(1)
	go s.read(r.ctx, r.rd)
	s.mu.Unlock()
	_ = s.w.flush()
}

func (s *server) end(err error) {
	s.err = err
	close(s.ended)
}

// drain runs the requests queued behind key's, in order, until none is
// left.
func (s *server) drain(ctx context.Context, key string) {
	for {
		s.mu.Lock()
		q := s.keys[key]
		if len(q) == 0 {
			delete(s.keys, key)
			s.mu.Unlock()
			return
		}
		req := q[0]
		q[0] = wire.Request{}
		s.keys[key] = q[1:]
		s.mu.Unlock()
		s.run(ctx, &req, false)
	}
}

// run runs one request and writes its answer; later leaves the answer in
// the writer's buffer (see frameWriter.writeResponse).
func (s *server) run(ctx context.Context, req *wire.Request, later bool) {
	if s.cfg.malformed != nil && s.cfg.malformed(req.Method) {
		_ = s.w.writeRaw([]byte{0, 0, 0, 2, 0x91, 0xc1}) // [reserved tag]
		return
	}
	resp := s.handle(ctx, req)
	if err := s.w.writeResponse(&resp, later); errors.Is(err, wire.ErrFrameTooLarge) {
		resp = wire.Response{ID: req.ID, Status: wire.StatusError, Message: "response too large: " + err.Error()}
		_ = s.w.writeResponse(&resp, later)
	}
	// Any other write error means the stream is gone; the reader will see
	// it too.
}

// handle runs the handler on req, recovering a panic.
func (s *server) handle(ctx context.Context, req *wire.Request) (resp wire.Response) {
	if req.Timeout > 0 {
		c := &callCtx{Context: ctx, deadline: time.Now().Add(req.Timeout)}
		defer c.release()
		ctx = c
	}
	defer func() {
		if v := recover(); v != nil {
			resp = wire.Response{ID: req.ID, Status: wire.StatusPanic, Message: panicText(v), Stack: string(debug.Stack())}
		}
	}()
	body, err := s.h(ctx, req.Key, req.Method, req.Body)
	if err != nil {
		return wire.Response{ID: req.ID, Status: wire.StatusError, Message: err.Error()}
	}
	return wire.Response{ID: req.ID, Status: wire.StatusOK, Body: body}
}

// callCtx is a handler's context: the server's, with the call's deadline.
// It makes a timer for the deadline only when the handler asks for Done:
// most handlers never do, and a timer for each call is a measurable part
// of a call's cost.
type callCtx struct {
	context.Context // the server's, for Value, and Err until Done is asked for
	deadline        time.Time

	mu     sync.Mutex
	timed  context.Context // made by the first Done
	cancel context.CancelFunc
}

func (c *callCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *callCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timed == nil {
		c.timed, c.cancel = context.WithDeadline(c.Context, c.deadline)
	}
	return c.timed.Done()
}

func (c *callCtx) Err() error {
	c.mu.Lock()
	timed := c.timed
	c.mu.Unlock()
	if timed != nil {
		return timed.Err()
	}
	if err := c.Context.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

func (c *callCtx) String() string { return "pluginrpc call context" }

// release stops the timer, if Done made one.
func (c *callCtx) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancel != nil {
		c.cancel()
	}
}

// panicText formats a panic value, even one whose String method panics.
func panicText(v any) (s string) {
	defer func() {
		if recover() != nil {
			s = fmt.Sprintf("panic value of type %T (its formatting panicked)", v)
		}
	}()
	return fmt.Sprint(v)
}

// wait waits for the handlers still running, at most d.
func (s *server) wait(d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}
