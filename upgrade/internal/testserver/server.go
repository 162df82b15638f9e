package testserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hotline-go/hotline/upgrade"
)

// Environment variables that configure a server process.
const (
	RoleEnv           = "HOTLINE_TESTSERVER_ROLE" // "server" or "plugin"
	dirEnv            = "HOTLINE_TESTSERVER_DIR"
	tcpEnv            = "HOTLINE_TESTSERVER_TCP"
	udpEnv            = "HOTLINE_TESTSERVER_UDP"
	httpEnv           = "HOTLINE_TESTSERVER_HTTP"
	upgradeTimeoutEnv = "HOTLINE_TESTSERVER_UPGRADE_TIMEOUT"
	drainTimeoutEnv   = "HOTLINE_TESTSERVER_DRAIN_TIMEOUT"
	lameDuckEnv       = "HOTLINE_TESTSERVER_LAME_DUCK"
)

// Config is what a server process is told through its environment.
type Config struct {
	Dir            string // PID file, mode file, Unix socket, plugins/
	TCP, UDP, HTTP string // host:port for the echo, the datagram echo, HTTP
	UpgradeTimeout time.Duration
	DrainTimeout   time.Duration
	LameDuck       time.Duration
}

// PIDFile is where the serving process's PID is.
func (c Config) PIDFile() string { return filepath.Join(c.Dir, "server.pid") }

// UnixSocket is the path of the Unix echo socket.
func (c Config) UnixSocket() string { return filepath.Join(c.Dir, "echo.sock") }

// ModeFile is the file read by each new generation at start.
func (c Config) ModeFile() string { return filepath.Join(c.Dir, "mode") }

// PluginFile is where the process pid writes its plugin's PID.
func (c Config) PluginFile(pid int) string {
	return filepath.Join(c.Dir, "plugins", strconv.Itoa(pid))
}

// Environ returns the environment of a server process for c.
func (c Config) Environ() []string {
	return []string{
		RoleEnv + "=server",
		dirEnv + "=" + c.Dir,
		tcpEnv + "=" + c.TCP,
		udpEnv + "=" + c.UDP,
		httpEnv + "=" + c.HTTP,
		upgradeTimeoutEnv + "=" + c.UpgradeTimeout.String(),
		drainTimeoutEnv + "=" + c.DrainTimeout.String(),
		lameDuckEnv + "=" + c.LameDuck.String(),
	}
}

func configFromEnv() (Config, error) {
	c := Config{
		Dir:  os.Getenv(dirEnv),
		TCP:  os.Getenv(tcpEnv),
		UDP:  os.Getenv(udpEnv),
		HTTP: os.Getenv(httpEnv),
	}
	for env, d := range map[string]*time.Duration{
		upgradeTimeoutEnv: &c.UpgradeTimeout,
		drainTimeoutEnv:   &c.DrainTimeout,
		lameDuckEnv:       &c.LameDuck,
	} {
		v, err := time.ParseDuration(os.Getenv(env))
		if err != nil {
			return c, fmt.Errorf("testserver: %s: %w", env, err)
		}
		*d = v
	}
	if c.Dir == "" || c.TCP == "" || c.UDP == "" || c.HTTP == "" {
		return c, errors.New("testserver: incomplete environment")
	}
	return c, nil
}

// Main runs the role named by [RoleEnv] and returns the process's exit code,
// or returns false at once if the variable is not set.
func Main() (code int, ran bool) {
	switch os.Getenv(RoleEnv) {
	case "server":
		if err := serve(); err != nil {
			fmt.Fprintln(os.Stderr, "testserver:", err)
			return 1, true
		}
		return 0, true
	case "plugin":
		plugin()
		return 0, true
	}
	return 0, false
}

// plugin stands for a go-plugin process: it runs until SIGTERM, and never
// notices that its parent is gone.
func plugin() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
}

func serve() error {
	cfg, err := configFromEnv()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("pid", os.Getpid())
	mode, err := os.ReadFile(cfg.ModeFile())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}

	r, err := upgrade.NewRestarter(
		upgrade.WithLogger(log),
		upgrade.WithPIDFile(cfg.PIDFile()),
		upgrade.WithUpgradeTimeout(cfg.UpgradeTimeout),
		upgrade.WithDrainTimeout(cfg.DrainTimeout),
		upgrade.WithLameDuck(cfg.LameDuck),
	)
	if err != nil {
		return err
	}
	defer r.Stop()

	tcp, err := r.Listen("tcp", cfg.TCP)
	if err != nil {
		return err
	}
	unix, err := r.Listen("unix", cfg.UnixSocket())
	if err != nil {
		return err
	}
	web, err := r.Listen("tcp", cfg.HTTP)
	if err != nil {
		return err
	}
	udp, err := r.ListenPacket("udp", cfg.UDP)
	if err != nil {
		return err
	}

	// Drain hooks run last-registered first: the plugin stops last.
	stopPlugin, err := startPlugin(cfg)
	if err != nil {
		return err
	}
	r.OnDrain(stopPlugin)

	pid := os.Getpid()
	for _, ln := range []net.Listener{tcp, unix} {
		es := newEchoServer(ln, pid)
		r.OnDrain(es.drain)
	}
	go udpEcho(udp, pid)

	mux := http.NewServeMux()
	mux.Handle("/healthz", r.HealthHandler())
	mux.Handle("/upgrade", r.UpgradeHandler())
	hello := fmt.Appendf(nil, "hello from %d\n", os.Getpid())
	mux.HandleFunc("/hello", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(hello) })
	srv := &http.Server{Handler: r.LameDuck(mux), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(web); !errors.Is(err, http.ErrServerClosed) {
			log.Error("testserver: http", "err", err)
		}
	}()
	r.OnDrain(srv.Shutdown)

	if strings.TrimSpace(string(mode)) == "hang" {
		// Stuck at the end of start-up, serving (its listeners take no
		// connection before Ready) with its plugin started: the old process
		// must keep serving, then kill this one at the upgrade timeout.
		log.Info("testserver: hanging before ready")
		t := time.NewTimer(time.Hour)
		<-t.C
		return errors.New("hung for an hour")
	}
	if err := r.Ready(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := r.Run(ctx); err != nil {
		return err
	}
	log.Info("testserver: exiting")
	return nil
}

// startPlugin starts a plugin process and returns the drain hook that stops
// it. It records the plugin's PID in cfg.PluginFile(os.Getpid()).
func startPlugin(cfg Config) (func(context.Context) error, error) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), RoleEnv+"=plugin")
	cmd.Stderr = os.Stderr
	// A server killed before Ready runs no drain hook: the kernel stops the
	// plugin with it.
	setPdeathsig(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start plugin: %w", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	if err := os.MkdirAll(filepath.Dir(cfg.PluginFile(0)), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(cfg.PluginFile(os.Getpid()), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-waited:
			return nil
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-waited
			return fmt.Errorf("plugin killed: %w", ctx.Err())
		}
	}, nil
}

func udpEcho(pc net.PacketConn, pid int) {
	buf := make([]byte, 2048)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		reply := fmt.Appendf(nil, "echo %d %s", pid, buf[:n])
		_, _ = pc.WriteTo(reply, addr)
	}
}

// echoServer answers each line "x" with "echo <pid> x". See [Client].
type echoServer struct {
	ln  net.Listener
	pid int
	wg  sync.WaitGroup

	mu       sync.Mutex
	draining bool
	conns    map[*echoConn]struct{}
}

type echoConn struct {
	net.Conn
	wmu sync.Mutex
}

func (c *echoConn) writeLine(s string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.Write([]byte(s))
	return err
}

func newEchoServer(ln net.Listener, pid int) *echoServer {
	s := &echoServer{ln: ln, pid: pid, conns: make(map[*echoConn]struct{})}
	s.wg.Add(1)
	go s.accept()
	return s
}

func (s *echoServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		ec := &echoConn{Conn: c}
		s.mu.Lock()
		s.conns[ec] = struct{}{}
		if s.draining {
			_ = ec.writeLine(Bye + "\n")
		}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handle(ec)
	}
}

func (s *echoServer) handle(c *echoConn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		_ = c.Close()
	}()
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return // the client closed (after "bye", when draining)
		}
		if err := c.writeLine(fmt.Sprintf("echo %d %s", s.pid, line)); err != nil {
			return
		}
	}
}

// drain stops accepting, says goodbye on every connection and waits for the
// clients to close; at the deadline it closes what is left.
func (s *echoServer) drain(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	for c := range s.conns {
		_ = c.writeLine(Bye + "\n")
	}
	s.mu.Unlock()
	_ = s.ln.Close()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		n := len(s.conns)
		for c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
		<-done
		return fmt.Errorf("echo: closed %d connections at the deadline: %w", n, ctx.Err())
	}
}
