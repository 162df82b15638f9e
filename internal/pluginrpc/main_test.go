package pluginrpc

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/hotline-go/hotline/internal/wire"
)

// The test binary is also the test plugin: run with envMode set (by the
// tests, through withEnv), TestMain serves a plugin instead of running the
// tests, as go-plugin's own tests do. Nothing is built, so the tests stay
// fast under -race.
const envMode = "HOTLINE_TEST_PLUGIN_MODE"

func TestMain(m *testing.M) {
	if mode, ok := os.LookupEnv(envMode); ok || os.Getenv(cookieKey) == cookieValue {
		os.Exit(pluginMain(cmp.Or(mode, "echo")))
	}
	// A binary built with -race sleeps a second at exit unless told not
	// to; the plugins inherit this.
	if err := os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")); err != nil {
		panic(err)
	}
	goleak.VerifyTestMain(m)
}

// pluginMain is the main of the test plugin; mode says which plugin.
func pluginMain(mode string) int {
	echo := Manifest{Machine: "echo", Versions: []string{"v1", "v2"}}
	cfg := serveConfig{protocol: wire.ProtocolVersion, malformed: func(m string) bool { return m == "malformed" }}
	var err error
	switch mode {
	case "echo":
		err = serve(echo, newTestHandler().handle, cfg)
	case "proto2":
		cfg.protocol = wire.ProtocolVersion + 1 // a protocol the host does not speak
		err = serve(echo, newTestHandler().handle, cfg)
	case "print-before":
		fmt.Println("hello from init") // breaks go-plugin's handshake
		err = serve(echo, newTestHandler().handle, cfg)
	case "rawecho", "netrpc-echo", "grpc-echo":
		err = benchPluginMain(mode)
	default:
		err = fmt.Errorf("unknown test plugin mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "test plugin:", err)
		return 1
	}
	return 0
}

// testHandler is the test plugin's handler. Its methods:
//
//	echo      returns the body
//	upper     returns the body in upper case
//	pid       returns the process id
//	error     returns an error whose text is the body
//	panic     panics with the body as value
//	sleep     sleeps for the duration in the body (or until ctx ends)
//	hang      never returns, whatever ctx says
//	crash     exits the process with status 3
//	mark      creates the file named by the body, then sleeps 500ms
//	print     writes the body as a line to stdout and to stderr
//	print-n   writes as many numbered lines to stdout as the body says, then "done"
//	partial   writes the body to stdout, without a newline
//	incr      counts the calls of its key, returns the count
//	stall-in  in the process whose id is the body, waits until ctx ends; elsewhere is incr
//	block     waits until release is called with the same body, or ctx ends
//	hold      waits until release is called with the same body
//	release   releases the blocked and held calls of the body
//	big       returns more than wire.MaxFrameSize bytes
//	malformed is answered with a malformed frame (serveConfig.malformed)
type testHandler struct {
	mu      sync.Mutex
	counts  map[string]int
	blocked map[string]chan struct{}
}

func newTestHandler() *testHandler {
	return &testHandler{counts: make(map[string]int), blocked: make(map[string]chan struct{})}
}

func (h *testHandler) gate(name string) chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch, ok := h.blocked[name]
	if !ok {
		ch = make(chan struct{})
		h.blocked[name] = ch
	}
	return ch
}

func (h *testHandler) handle(ctx context.Context, key, method string, body []byte) ([]byte, error) {
	switch method {
	case "echo", "event-echo":
		return body, nil
	case "work-echo": // busy for the µs in the key's suffix ("k/5"), then echo
		_, us, _ := strings.Cut(key, "/")
		n, _ := strconv.Atoi(us)
		for end := time.Now().Add(time.Duration(n) * time.Microsecond); time.Now().Before(end); {
		}
		return body, nil
	case "upper":
		return bytes.ToUpper(body), nil
	case "pid":
		return []byte(strconv.Itoa(os.Getpid())), nil
	case "error":
		return nil, errors.New(string(body))
	case "panic":
		panic(string(body))
	case "sleep":
		d, err := time.ParseDuration(string(body))
		if err != nil {
			return nil, err
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return []byte("slept"), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	case "hang":
		select {}
	case "crash":
		os.Exit(3)
	case "mark":
		if err := os.WriteFile(string(body), nil, 0o600); err != nil {
			return nil, err
		}
		time.Sleep(500 * time.Millisecond)
		return []byte("marked"), nil
	case "print":
		if _, err := fmt.Fprintf(os.Stdout, "%s\n", body); err != nil {
			return nil, err
		}
		if _, err := fmt.Fprintf(os.Stderr, "%s\n", body); err != nil {
			return nil, err
		}
		return nil, nil
	case "stall-in":
		if string(body) == strconv.Itoa(os.Getpid()) {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return h.handle(ctx, key, "incr", nil)
	case "print-n":
		n, err := strconv.Atoi(string(body))
		if err != nil {
			return nil, err
		}
		w := bufio.NewWriter(os.Stdout)
		for i := range n {
			fmt.Fprintf(w, "line %d of the flood %s\n", i, strings.Repeat("-", 80))
		}
		fmt.Fprintln(w, "done")
		return nil, w.Flush()
	case "partial":
		_, err := os.Stdout.Write(body)
		return nil, err
	case "incr":
		h.mu.Lock()
		h.counts[key]++
		n := h.counts[key]
		h.mu.Unlock()
		return []byte(strconv.Itoa(n)), nil
	case "block":
		select {
		case <-h.gate(string(body)):
			return []byte("released"), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	case "hold":
		<-h.gate(string(body))
		return []byte("released"), nil
	case "release":
		close(h.gate(string(body)))
		return nil, nil
	case "big":
		return make([]byte, wire.MaxFrameSize+1), nil
	}
	return nil, fmt.Errorf("no method %q", method)
}

// pluginEnvFor is the environment that makes the test binary the test
// plugin in mode.
func pluginEnvFor(mode string) []string {
	return []string{envMode + "=" + mode}
}

// selfSum is the SHA-256 of the test binary, the test plugin.
var selfSum = sync.OnceValues(func() ([]byte, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return FileChecksum(exe)
})

// testExe is the test binary's path and checksum.
func testExe(t testing.TB) (string, []byte) {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	sum, err := selfSum()
	require.NoError(t, err)
	return exe, sum
}

// shortDir makes a directory with a short path (socket paths must fit in
// 108 bytes, and t.TempDir's are long), removed at the end of the test.
func shortDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hlt")
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, os.RemoveAll(dir)) })
	return dir
}

// testClient returns a Client of the test plugin in mode, with its own
// socket directory and a recording logger. At the end of the test it
// closes the Client and checks that nothing is left in the directory.
func testClient(t testing.TB, mode string, opts ...Option) (*Client, *recorder) {
	t.Helper()
	exe, sum := testExe(t)
	return testClientAt(t, exe, sum, mode, opts...)
}

// testClientAt is testClient for the binary at path.
func testClientAt(t testing.TB, exe string, sum []byte, mode string, opts ...Option) (*Client, *recorder) {
	t.Helper()
	dir := shortDir(t)
	rec := &recorder{}
	// A pool of two connections, whatever the default here: every test
	// of the transport's faults runs over more than one connection.
	base := []Option{WithSocketDir(dir), WithLogger(slog.New(rec)), WithName("test-" + mode), withEnv(pluginEnvFor(mode)...),
		WithConns(2)}
	c := New(exe, sum, append(base, opts...)...)
	t.Cleanup(func() {
		require.NoError(t, c.Close())
		requireEmptyDir(t, dir)
		if t.Failed() {
			t.Log(rec.dump())
		}
	})
	return c, rec
}

func requireEmptyDir(t testing.TB, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, filepath.Join(dir, e.Name()))
	}
	require.Empty(t, names, "left behind in the socket directory")
}

// requireGone checks that no process has the id pid (it was reaped).
func requireGone(t testing.TB, pid int) {
	t.Helper()
	require.Eventually(t, func() bool {
		return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
	}, 5*time.Second, 10*time.Millisecond, "process %d still exists", pid)
}

// recorder is a slog.Handler that keeps the records.
type recorder struct {
	mu      sync.Mutex
	records []string
	attrs   []slog.Attr
	shared  *recorder
}

func (r *recorder) root() *recorder {
	if r.shared != nil {
		return r.shared
	}
	return r
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s %s %s", time.Now().Format("15:04:05.000"), rec.Level, rec.Message)
	for _, a := range r.attrs {
		fmt.Fprintf(&sb, " %s=%v", a.Key, a.Value)
	}
	rec.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&sb, " %s=%v", a.Key, a.Value)
		return true
	})
	root := r.root()
	root.mu.Lock()
	root.records = append(root.records, sb.String())
	root.mu.Unlock()
	return nil
}

func (r *recorder) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &recorder{attrs: append(append([]slog.Attr{}, r.attrs...), attrs...), shared: r.root()}
}

func (r *recorder) WithGroup(string) slog.Handler { return r }

// has reports whether a record contains every one of parts.
func (r *recorder) has(parts ...string) bool {
	root := r.root()
	root.mu.Lock()
	defer root.mu.Unlock()
	for _, rec := range root.records {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(rec, p)
		}
		if all {
			return true
		}
	}
	return false
}

func (r *recorder) dump() string {
	root := r.root()
	root.mu.Lock()
	defer root.mu.Unlock()
	return "log:\n" + strings.Join(root.records, "\n")
}

var _ io.Writer = (*lineWriter)(nil)

// inFlightCalls counts the calls in flight on the running process's conns;
// 0 if none runs.
func inFlightCalls(c *Client) int {
	c.mu.Lock()
	p := c.cur
	c.mu.Unlock()
	if p == nil {
		return 0
	}
	n := 0
	for _, pc := range p.conns {
		pc.mu.Lock()
		n += len(pc.pending)
		pc.mu.Unlock()
	}
	return n
}
