package upgrade

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/internal/handoff"
	testmachine "github.com/hotline-go/hotline/internal/plugintest/machine"
	"github.com/hotline-go/hotline/plugin"
)

// The handoff process tests run the test binary as a sequence server: each
// connection has a session machine that numbers the lines it gets. A line
// "text" is answered "<n> <pid> <version> text"; "@key text" goes to the
// machine of another connection (say one restored from the previous
// process); "stats" answers "<pid> <fds> <goroutines> <machines>"; "hold"
// casts Hold and "cast text" casts Fire (answered "cast"), "fired" answers
// the texts of the Fire events handled, with the PID of the process that
// handled each. Files in
// the directory of HOTLINE_HANDOFF_DIR steer the next generation: "fault"
// ("exit:<stage>", "panic:<stage>", "hang:<stage>", "slow:<stage>:<duration>",
// "format", "nocode") and
// "version" ("v2" restores under a newer session code, through UPGRADE),
// and "plugin" ("<path> <sha256>": sessions are the plugin-hosted counter of
// internal/plugintest, loaded from that binary by each generation; see
// handlePlugin); "upgrade-timeout" (a duration, default 10s).

const handoffEnv = "HOTLINE_HANDOFF_TEST"

// Line is a session's event: a line to number.
type Line struct{ Text string }

// Arm sets a session's timeout, whose Fire event records its text; Fired
// asks for the texts recorded.
type (
	Arm struct {
		Ms   int
		Text string
	}
	Fire  struct{ Text string }
	Fired struct{}
	// Hold keeps a session busy until the next handoff has begun pausing
	// the connections, and 300 ms more (long after it suspends the
	// machines): the events sent to it meanwhile wait in its mailbox and
	// travel as queued events.
	Hold struct{}
)

type sessionData struct {
	N     int
	V2    bool
	Fired []string
}

func sessionCode(version string) *fsm.Machine[sessionData] { return sessionCodeWith(version, nil) }

// sessionCodeWith is sessionCode whose Hold waits for pausing to close.
func sessionCodeWith(version string, pausing <-chan struct{}) *fsm.Machine[sessionData] {
	m := fsm.Define("session", version, "open", sessionData{})
	pid := strconv.Itoa(os.Getpid())
	fsm.On(m, "open", func(l Line, d sessionData) fsm.Result[sessionData] {
		d.N++
		return fsm.Keep(d, fsm.Reply(fmt.Sprintf("%d %s %s %s", d.N, pid, version, l.Text)))
	})
	fsm.OnAny(m, func(a Arm, d sessionData) fsm.Result[sessionData] {
		return fsm.Keep(d, fsm.Timeout("t", time.Duration(a.Ms)*time.Millisecond, Fire{Text: a.Text}), fsm.Reply("armed"))
	})
	fsm.OnAny(m, func(f Fire, d sessionData) fsm.Result[sessionData] {
		d.Fired = append(d.Fired, f.Text+"@"+pid)
		return fsm.Keep(d)
	})
	fsm.OnAnyFlags(m, func(q AskFlag, d sessionData, f fsm.Flags) fsm.Result[sessionData] {
		return fsm.Keep(d, fsm.Reply(f.On(q.Name)))
	})
	fsm.OnAny(m, func(_ Hold, d sessionData) fsm.Result[sessionData] {
		if pausing == nil {
			return fsm.Keep(d)
		}
		select { // a handler that blocks, on purpose
		case <-pausing:
			time.Sleep(300 * time.Millisecond)
		case <-time.After(10 * time.Second):
		}
		return fsm.Keep(d)
	})
	fsm.OnAny(m, func(_ Fired, d sessionData) fsm.Result[sessionData] {
		return fsm.Keep(d, fsm.Reply(strings.Join(d.Fired, ",")))
	})
	if version == "v2" {
		m.OnUpgrade(func(from, state string, raw msgpack.RawMessage) (string, sessionData, error) {
			var d sessionData
			err := msgpack.Unmarshal(raw, &d)
			d.V2 = true
			return state, d, err
		})
	}
	return m
}

func handoffServerMain() (int, bool) {
	if os.Getenv(handoffEnv) == "" {
		return 0, false
	}
	if err := runHandoffServer(); err != nil {
		fmt.Fprintln(os.Stderr, "handoff server:", err)
		return 1, true
	}
	return 0, true
}

func runHandoffServer() error {
	dir := os.Getenv(handoffEnv)
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("pid", os.Getpid())
	fault, version := readSetting(dir, "fault"), readSetting(dir, "version")
	upgradeTimeout := 10 * time.Second // a -race build on a loaded 2-core runner can take seconds to get ready
	if d, err := time.ParseDuration(readSetting(dir, "upgrade-timeout")); err == nil {
		upgradeTimeout = d
	}
	r, err := NewRestarter(WithLogger(log), WithPIDFile(filepath.Join(dir, "server.pid")),
		WithUpgradeTimeout(upgradeTimeout), WithDrainTimeout(5*time.Second))
	if err != nil {
		return err
	}
	defer r.Stop()
	profReady, profExit := func() {}, func() {}
	if prof := os.Getenv(handoffEnv + "_PROF"); prof != "" {
		profReady, profExit = profileHandoff(prof, r.f.HasParent())
	}
	defer profExit()
	// The plugin stops after the machines (deferred before the System's
	// shutdown), whether the process drains, fails or panics.
	var plug *plugin.Plugin
	if spec := readSetting(dir, "plugin"); spec != "" {
		if plug, err = loadPlugin(log, spec); err != nil {
			return err
		}
		defer func() { _ = plug.Close() }()
	}
	sys := actor.NewSystem(actor.WithLogger(log))
	defer func() { _ = sys.Shutdown(context.Background()) }()

	opts := []HandoffOption{WithHandoffDir(filepath.Join(dir, "handoff")), WithHandoffTimeout(5 * time.Second)}
	if !r.f.HasParent() {
		fault = "" // a fault is for the next generation
	}
	pausing := make(chan struct{})
	codes := []fsm.Code{sessionCodeWith("v1", pausing), sessionCodeWith("v2", pausing)}
	if plug != nil {
		if codes, err = pluginCodes(plug); err != nil {
			return err
		}
	}
	if version != "v2" {
		codes = codes[:1]
	}
	cur := codes[len(codes)-1]
	if fault != "nocode" {
		opts = append(opts, WithCodes(codes...))
	}
	h, err := NewHandoff(r, sys, opts...)
	if err != nil {
		return err
	}
	if fault == "format" {
		h.cfg.minFormat = handoff.Version + 1
	}
	if stage, ok := strings.CutPrefix(fault, "exit:"); ok {
		h.cfg.fault = func(s string) {
			if s == stage {
				os.Exit(3)
			}
		}
	}
	if stage, ok := strings.CutPrefix(fault, "panic:"); ok {
		h.cfg.fault = func(s string) {
			if s == stage {
				panic("handoff test: panic at " + s)
			}
		}
	}
	if spec, ok := strings.CutPrefix(fault, "slow:"); ok {
		stage, d, _ := strings.Cut(spec, ":")
		pause, err := time.ParseDuration(d)
		if err != nil {
			return fmt.Errorf("fault %q: %w", fault, err)
		}
		h.cfg.fault = func(s string) {
			if s == stage {
				time.Sleep(pause) // a slow start: real processes, real time
			}
		}
	}
	if stage, ok := strings.CutPrefix(fault, "hang:"); ok {
		h.cfg.fault = func(s string) {
			if s == stage {
				select {} // killed at the upgrade timeout
			}
		}
	}
	ln, err := r.Listen("tcp", os.Getenv(handoffEnv+"_ADDR"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	got, err := h.Receive(ctx)
	cancel()
	if err != nil {
		return err
	}
	srv := &seqServer{h: h, sys: sys, code: cur, plugin: plug, ln: ln, done: make(chan struct{}), conns: map[string]*seqConn{},
		pausing: sync.OnceFunc(func() { close(pausing) })}
	owned := map[string]bool{}
	for _, rc := range got.Conns {
		owned[rc.Owner] = true
	}
	for key, ref := range got.Machines {
		if !owned[key] { // its connection ended during the handoff: so does it
			h.Unmanage(key)
			_ = actor.Kill(ref)
		}
	}
	for key, rc := range got.Conns {
		ref, ok := got.Machines[rc.Owner]
		if !ok {
			return fmt.Errorf("connection %s: no machine %q", key, rc.Owner)
		}
		if err := srv.serve(key, rc.Conn, rc.Unread, ref); err != nil {
			return err
		}
	}
	if err := r.Ready(); err != nil {
		return err
	}
	profReady()
	go srv.accept()
	r.OnDrain(srv.drain)
	sctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return r.Run(sctx)
}

// loadPlugin starts the plugin binary of spec ("<path> <sha256>") and logs
// its process's PID, for the tests to follow.
func loadPlugin(log *slog.Logger, spec string) (*plugin.Plugin, error) {
	path, hexsum, _ := strings.Cut(spec, " ")
	sum, err := plugin.ParseChecksum(hexsum)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := plugin.Load(ctx, path, sum, plugin.WithMachine("counter"), plugin.WithLogger(log))
	if err != nil {
		return nil, err
	}
	log.Info("handoff test: plugin started", "plugin_pid", p.PID())
	return p, nil
}

func pluginCodes(p *plugin.Plugin) ([]fsm.Code, error) {
	var codes []fsm.Code
	for _, v := range []string{"v1", "v2"} {
		c, err := p.Code(v)
		if err != nil {
			return nil, err
		}
		codes = append(codes, c)
	}
	return codes, nil
}

func readSetting(dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

type seqServer struct {
	h      *Handoff
	sys    *actor.System
	code   fsm.Code
	plugin *plugin.Plugin // the sessions' code runs there, if not nil
	ln     net.Listener
	done   chan struct{}
	// pausing closes the channel Hold waits for.
	pausing func()

	mu    sync.Mutex
	n     int
	conns map[string]*seqConn
	wg    sync.WaitGroup
}

func (s *seqServer) accept() {
	pid := os.Getpid()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.n++
		key := fmt.Sprintf("c%d-%d", pid, s.n)
		s.mu.Unlock()
		ref, err := fsm.Start(context.Background(), s.sys, s.code, fsm.WithID(key))
		if err == nil {
			err = s.h.Manage(key, ref)
		}
		if err == nil {
			err = s.serve(key, c, nil, ref)
		}
		if err != nil {
			_ = c.Close()
		}
	}
}

// serve starts reading a connection for its machine, the unread bytes
// first, and adopts it for the handoff.
func (s *seqServer) serve(key string, c net.Conn, unread []byte, ref actor.Ref) error {
	sc := &seqConn{s: s, key: key, c: c, ref: ref, resumeC: make(chan struct{}), gone: make(chan struct{})}
	sc.br = bufio.NewReader(io.MultiReader(bytesReader(unread), c))
	err := s.h.Adopt(key, Conn{Conn: c, Owner: key, Pause: sc.pause, Resume: sc.resume})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.conns[key] = sc
	s.mu.Unlock()
	s.wg.Go(sc.read)
	return nil
}

func bytesReader(b []byte) io.Reader { return strings.NewReader(string(b)) }

func (s *seqServer) drain(ctx context.Context) error {
	_ = s.ln.Close()
	close(s.done)
	s.mu.Lock()
	for _, c := range s.conns {
		_ = c.c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

type seqConn struct {
	s       *seqServer
	key     string
	c       net.Conn
	br      *bufio.Reader
	ref     actor.Ref
	partial string // of a line cut by a pause

	gone chan struct{} // closed when read returns

	mu      sync.Mutex
	paused  bool
	ack     chan []byte
	resumeC chan struct{}
}

func (c *seqConn) pause(ctx context.Context) ([]byte, error) {
	c.s.pausing()
	ack := make(chan []byte, 1)
	c.mu.Lock()
	c.paused, c.ack = true, ack
	c.mu.Unlock()
	if err := c.c.SetReadDeadline(time.Unix(1, 0)); err != nil {
		return nil, err
	}
	select {
	case b := <-ack:
		return b, nil
	case <-c.gone:
		return nil, net.ErrClosed
	case <-ctx.Done():
		// The handoff fails and resumes only what it paused: withdraw
		// the pause, also if the reader has taken it (it waits on
		// resumeC) or will once its request in hand ends.
		c.resume()
		return nil, ctx.Err()
	}
}

func (c *seqConn) resume() {
	_ = c.c.SetReadDeadline(time.Time{})
	c.mu.Lock()
	c.paused = false
	close(c.resumeC)
	c.resumeC = make(chan struct{})
	c.mu.Unlock()
}

// read handles the connection's lines one at a time.
func (c *seqConn) read() {
	defer func() {
		close(c.gone)
		c.s.h.Release(c.key)
		_ = c.c.Close()
		c.s.h.Unmanage(c.key)
		_ = actor.Kill(c.ref) // its session ends with it (gone already after a handoff)
		c.s.mu.Lock()
		delete(c.s.conns, c.key)
		c.s.mu.Unlock()
	}()
	w := bufio.NewWriter(c.c)
	for {
		c.mu.Lock()
		if c.paused {
			ack, resumeC := c.ack, c.resumeC
			c.mu.Unlock()
			// What was read and not handled: the cut line, then the buffer.
			n := c.br.Buffered()
			b, _ := c.br.Peek(n)
			ack <- append([]byte(c.partial), b...)
			select {
			case <-resumeC:
				continue
			case <-c.s.done:
				return
			}
		}
		c.mu.Unlock()
		line, err := c.br.ReadString('\n')
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.partial += line
				continue
			}
			return
		}
		line = c.partial + line
		c.partial = ""
		if !c.handle(w, strings.TrimSuffix(line, "\n")) {
			return
		}
	}
}

// goroutines counts the goroutines other than the actor System's workers,
// whose number follows the load (idle ones are kept up to a bound).
func goroutines() int {
	var b strings.Builder
	if err := pprof.Lookup("goroutine").WriteTo(&b, 1); err != nil {
		return -1
	}
	n := 0
	_, body, _ := strings.Cut(b.String(), "\n") // "goroutine profile: total N"
	for _, rec := range strings.Split(body, "\n\n") {
		var count int
		if _, err := fmt.Sscanf(rec, "%d @", &count); err != nil {
			continue
		}
		if !strings.Contains(rec, "actor.(*System).worker") {
			n += count
		}
	}
	return n
}

func (c *seqConn) handle(w *bufio.Writer, line string) bool {
	var reply string
	switch {
	case line == "hold":
		reply = castReply(fsm.Cast(c.ref, Hold{}))
	case strings.HasPrefix(line, "cast "):
		reply = castReply(fsm.Cast(c.ref, Fire{Text: strings.TrimPrefix(line, "cast ")}))
	case line == "gdump":
		var b strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
		reply = strings.ReplaceAll(b.String(), "\n", "|")
	case line == "fds":
		fds, _ := os.ReadDir("/proc/self/fd")
		var names []string
		for _, fd := range fds {
			target, _ := os.Readlink("/proc/self/fd/" + fd.Name())
			names = append(names, fd.Name()+"="+target)
		}
		reply = strings.Join(names, " ")
	case line == "stats":
		fds, _ := os.ReadDir("/proc/self/fd")
		c.s.h.mu.Lock()
		n := c.s.h.machines.len()
		c.s.h.mu.Unlock()
		reply = fmt.Sprintf("%d %d %d %d", os.Getpid(), len(fds), goroutines(), n)
	case c.s.plugin != nil:
		reply = c.handlePlugin(line)
	case strings.HasPrefix(line, "arm ") || line == "fired":
		var ev any = Fired{}
		if f := strings.Fields(line); len(f) == 3 {
			ms, _ := strconv.Atoi(f[1])
			ev = Arm{Ms: ms, Text: f[2]}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		v, err := fsm.Call(ctx, c.ref, ev)
		cancel()
		if err != nil {
			reply = "error " + err.Error()
		} else {
			reply = v.(string)
		}
	default:
		ref := c.ref
		if key, text, ok := strings.Cut(line, " "); ok && strings.HasPrefix(key, "@") {
			r, found := c.s.h.Machine(key[1:])
			if !found {
				reply = "no machine " + key[1:]
				break
			}
			ref, line = r, text
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		v, err := fsm.Call(ctx, ref, Line{Text: line})
		cancel()
		if err != nil {
			reply = "error " + err.Error()
		} else {
			reply = v.(string)
		}
	}
	if _, err := w.WriteString(reply + "\n"); err != nil {
		return false
	}
	return w.Flush() == nil
}

func castReply(err error) string {
	if err != nil {
		return "error " + err.Error()
	}
	return "cast"
}

// handlePlugin answers a line for a session of the plugin-hosted counter
// (internal/plugintest/machine): "plugin" answers the plugin process's PID;
// "arm <ms>" arms its state timeout (until it fires, increments are
// postponed); "incr <k>" casts an increment; "get" answers "<count>
// <state>"; any other text is counted (Pad) and answered "<n> <pid>
// <version> text", as a session in process does.
func (c *seqConn) handlePlugin(line string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd, arg, _ := strings.Cut(line, " ")
	n, _ := strconv.Atoi(arg)
	var ev any
	switch cmd {
	case "plugin":
		return strconv.Itoa(c.s.plugin.PID())
	case "incr":
		return castReply(fsm.Cast(c.ref, testmachine.Incr{By: n}))
	case "arm":
		ev = testmachine.Arm{After: time.Duration(n) * time.Millisecond}
	case "get":
		ev = testmachine.Get{}
	default:
		ev = testmachine.Pad{Note: line}
	}
	v, err := fsm.Call(ctx, c.ref, ev)
	if err != nil {
		return "error " + err.Error()
	}
	info, err := fsm.Inspect(ctx, c.ref)
	if err != nil {
		return "error " + err.Error()
	}
	switch cmd {
	case "arm":
		s, err := plugin.As[string](v)
		if err != nil {
			return "error " + err.Error()
		}
		return s
	case "get":
		cnt, err := plugin.As[testmachine.Count](v)
		if err != nil {
			return "error " + err.Error()
		}
		return fmt.Sprintf("%d %s", cnt.N, info.State)
	}
	k, err := plugin.As[int](v)
	if err != nil {
		return "error " + err.Error()
	}
	return fmt.Sprintf("%d %d %s %s", k, os.Getpid(), info.Version, line)
}

// profileHandoff writes CPU profiles of this process, for BenchmarkHandoff
// run with HOTLINE_HANDOFF_TEST_PROF=dir: new-<pid>.prof from its start to
// ready (call ready), old-<pid>.prof from SIGHUP to exit (call exit).
func profileHandoff(dir string, isNew bool) (ready, exit func()) {
	var mu sync.Mutex
	var stop func()
	start := func(name string) {
		mu.Lock()
		defer mu.Unlock()
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.prof", name, os.Getpid())))
		if err == nil && pprof.StartCPUProfile(f) == nil {
			stop = func() { pprof.StopCPUProfile(); _ = f.Close() }
		}
	}
	end := func() {
		mu.Lock()
		defer mu.Unlock()
		if stop != nil {
			stop()
			stop = nil
		}
	}
	if isNew {
		start("new")
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-hup:
			end()
			start("old")
		case <-quit:
		}
	}()
	return end, func() {
		signal.Stop(hup)
		close(quit)
		<-done
		end()
	}
}
