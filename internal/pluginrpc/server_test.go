package pluginrpc

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/internal/wire"
)

// rawPlugin is a server in this process that the test talks to in frames.
type rawPlugin struct {
	host   net.Conn
	rd     *wire.Reader
	served chan error
	s      *server
}

func newRawPlugin(t *testing.T, h Handler) *rawPlugin {
	t.Helper()
	host, plugin := socketPair(t)
	r := &rawPlugin{host: host, rd: wire.NewReader(host, 4096), served: make(chan error, 1),
		s: newServer(h, plugin, serveConfig{})}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { r.served <- r.s.serve(ctx, wire.NewReader(plugin, 4096)) }()
	t.Cleanup(func() {
		cancel()
		_ = host.Close()
		_ = plugin.Close()
		r.s.wg.Wait()
	})
	return r
}

func (r *rawPlugin) send(t *testing.T, reqs ...wire.Request) {
	t.Helper()
	var b []byte
	for i := range reqs {
		var err error
		b, err = wire.AppendFrame(b, &reqs[i])
		require.NoError(t, err)
	}
	_, err := r.host.Write(b)
	require.NoError(t, err)
}

func (r *rawPlugin) recv(t *testing.T) wire.Response {
	t.Helper()
	require.NoError(t, r.host.SetReadDeadline(time.Now().Add(10*time.Second)))
	msg, err := r.rd.Next()
	require.NoError(t, err)
	var resp wire.Response
	require.NoError(t, resp.Decode(msg))
	return resp
}

// TestServerOrder sends requests of two keys in one write: once the host
// nudges, the second key is answered while the first is held up, and the
// first key's requests run one at a time, in order.
func TestServerOrder(t *testing.T) {
	gate := make(chan struct{})
	started := make(chan struct{})
	var mu sync.Mutex
	running := map[string]int{}
	maxRunning := 0 // of one key
	order := map[string][]string{}
	h := func(ctx context.Context, key, method string, body []byte) ([]byte, error) {
		mu.Lock()
		running[key]++
		maxRunning = max(maxRunning, running[key])
		order[key] = append(order[key], string(body))
		mu.Unlock()
		defer func() {
			mu.Lock()
			running[key]--
			mu.Unlock()
		}()
		if method == "wait" {
			close(started)
			<-gate
		}
		return body, nil
	}
	r := newRawPlugin(t, h)
	r.send(t,
		wire.Request{ID: 1, Key: "a", Method: "wait", Body: []byte("1")},
		wire.Request{ID: 2, Key: "a", Method: "go", Body: []byte("2")},
		wire.Request{ID: 3, Key: "a", Method: "go", Body: []byte("3")},
		wire.Request{ID: 4, Key: "b", Method: "go", Body: []byte("4")},
	)
	<-started
	r.s.nudge()
	require.Equal(t, uint64(4), r.recv(t).ID, "key b is not held up by key a")
	close(gate)
	for _, id := range []uint64{1, 2, 3} {
		require.Equal(t, id, r.recv(t).ID)
	}
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, map[string][]string{"a": {"1", "2", "3"}, "b": {"4"}}, order)
	require.Equal(t, 1, maxRunning)
}

func TestServerAnswers(t *testing.T) {
	r := newRawPlugin(t, newTestHandler().handle)
	tests := []struct {
		name string
		req  wire.Request
		want wire.Response
	}{
		{"ok", wire.Request{Key: "k", Method: "upper", Body: []byte("hi")},
			wire.Response{Status: wire.StatusOK, Body: []byte("HI")}},
		{"error", wire.Request{Key: "k", Method: "error", Body: []byte("bad input")},
			wire.Response{Status: wire.StatusError, Message: "bad input"}},
		{"unknown method", wire.Request{Key: "k", Method: "nope"},
			wire.Response{Status: wire.StatusError, Message: `no method "nope"`}},
		{"deadline", wire.Request{Key: "k", Method: "sleep", Body: []byte("10s"), Timeout: 20 * time.Millisecond},
			wire.Response{Status: wire.StatusError, Message: "context deadline exceeded"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.ID = uint64(i + 1)
			r.send(t, tt.req)
			tt.want.ID = tt.req.ID
			require.Equal(t, tt.want, r.recv(t))
		})
	}
}

type badStringer struct{}

func (badStringer) String() string { panic("no") }

func TestServerPanics(t *testing.T) {
	h := func(ctx context.Context, key, method string, body []byte) ([]byte, error) {
		switch method {
		case "value":
			panic(fmt.Errorf("wrapped: %w", context.Canceled))
		case "stringer":
			panic(badStringer{})
		}
		var m map[string]int
		m["x"] = 1 // a runtime error
		return nil, nil
	}
	r := newRawPlugin(t, h)
	tests := []struct {
		method, value string
	}{
		{"value", "wrapped: context canceled"},
		{"stringer", "%!v(PANIC=String method: no)"},
		{"runtime", "assignment to entry in nil map"},
	}
	for i, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			r.send(t, wire.Request{ID: uint64(i + 1), Key: "k", Method: tt.method})
			resp := r.recv(t)
			require.Equal(t, wire.StatusPanic, resp.Status)
			require.Equal(t, tt.value, resp.Message)
			require.True(t, strings.HasPrefix(resp.Stack, "goroutine "), resp.Stack)
		})
	}
}

func TestServerRefusesMalformed(t *testing.T) {
	r := newRawPlugin(t, newTestHandler().handle)
	_, err := r.host.Write([]byte{0, 0, 0, 1, 0xc1})
	require.NoError(t, err)
	require.ErrorIs(t, <-r.served, wire.ErrMalformed)
}

func TestServerEndsAtEOF(t *testing.T) {
	r := newRawPlugin(t, newTestHandler().handle)
	require.NoError(t, r.host.Close())
	require.NoError(t, <-r.served)
}

func TestServeNotLaunched(t *testing.T) {
	m := Manifest{Machine: "echo", Versions: []string{"v1"}}
	require.ErrorIs(t, Serve(m, newTestHandler().handle), ErrNotLaunched)
	require.ErrorIs(t, Serve(Manifest{Machine: "echo"}, newTestHandler().handle), ErrManifest)
	require.ErrorIs(t, Serve(Manifest{Versions: []string{"v1"}}, newTestHandler().handle), ErrManifest)
}

func TestOpener(t *testing.T) {
	dir := shortDir(t)
	o := &opener{manifest: Manifest{Machine: "m", Versions: []string{"v1", "v2"}},
		cfg: serveConfig{protocol: wire.ProtocolVersion}, conns: make(chan accepted, 1), log: hclog.NewNullLogger()}

	hello := func(protocol int) []byte {
		return (&wire.Hello{Protocol: protocol, SocketDir: dir, Conns: 2}).Append(nil)
	}
	_, err := o.open(hello(wire.ProtocolVersion + 1))
	require.EqualError(t, err, fmt.Sprintf("protocol version mismatch: host speaks %d, plugin speaks %d", wire.ProtocolVersion+1, wire.ProtocolVersion))
	_, err = o.open([]byte{0xc1})
	require.ErrorIs(t, err, wire.ErrMalformed)

	b, err := o.open(hello(wire.ProtocolVersion))
	require.NoError(t, err)
	var w wire.Welcome
	require.NoError(t, w.Decode(b))
	require.Equal(t, "m", w.Machine)
	require.Equal(t, []string{"v1", "v2"}, w.Versions)
	require.Equal(t, dir, filepath.Dir(w.Socket))
	require.Len(t, w.Token, wire.TokenSize)
	info, err := os.Stat(w.Socket)
	require.NoError(t, err)
	require.Equal(t, os.ModeSocket|0o600, info.Mode())

	_, err = o.open(hello(wire.ProtocolVersion))
	require.EqualError(t, err, "event socket already opened")

	authenticate := func(token []byte, i int) net.Conn {
		nc, err := net.Dial("unix", w.Socket)
		require.NoError(t, err)
		frame, err := wire.AppendFrame(nil, &wire.Auth{Token: token, Conn: i})
		require.NoError(t, err)
		_, err = nc.Write(frame)
		require.NoError(t, err)
		return nc
	}
	refused := func(nc net.Conn, why string) {
		_, err := nc.Read(make([]byte, 1))
		require.ErrorIs(t, err, io.EOF, why)
		require.NoError(t, nc.Close())
	}
	refused(authenticate(make([]byte, wire.TokenSize), 0), "a connection with the wrong token is closed")
	refused(authenticate(w.Token, 2), "an index out of the pool is refused")

	second := authenticate(w.Token, 1)
	defer func() { require.NoError(t, second.Close()) }()
	refused(authenticate(w.Token, 1), "an index taken already is refused")
	first := authenticate(w.Token, 0)
	defer func() { require.NoError(t, first.Close()) }()

	a := <-o.conns
	require.NoError(t, a.err)
	require.Len(t, a.ncs, 2)
	// The pool is in the order of the indexes: the plugin's end of first
	// is a.ncs[0].
	_, err = first.Write([]byte("x"))
	require.NoError(t, err)
	require.NoError(t, a.ncs[0].SetReadDeadline(time.Now().Add(10*time.Second)))
	buf := make([]byte, 1)
	_, err = io.ReadFull(a.ncs[0], buf)
	require.NoError(t, err)
	require.Equal(t, "x", string(buf))
	for _, nc := range a.ncs {
		require.NoError(t, nc.Close())
	}
	_, err = os.Stat(w.Socket)
	require.ErrorIs(t, err, fs.ErrNotExist, "the socket file is removed once the host is connected")
}

func TestCallCtx(t *testing.T) {
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
	defer cancel()
	deadline := time.Now().Add(30 * time.Millisecond)
	c := &callCtx{Context: parent, deadline: deadline}
	defer c.release()

	d, ok := c.Deadline()
	require.True(t, ok)
	require.Equal(t, deadline, d)
	require.Equal(t, "v", c.Value(ctxKey{}))
	require.NoError(t, c.Err())

	// A context derived from it ends at its deadline.
	child, cancelChild := context.WithCancel(c)
	defer cancelChild()
	<-child.Done()
	require.ErrorIs(t, child.Err(), context.DeadlineExceeded)
	require.ErrorIs(t, c.Err(), context.DeadlineExceeded)

	// Without Done, Err still tells the deadline and the parent's end.
	late := &callCtx{Context: parent, deadline: time.Now().Add(-time.Second)}
	require.ErrorIs(t, late.Err(), context.DeadlineExceeded)
	early := &callCtx{Context: parent, deadline: time.Now().Add(time.Hour)}
	cancel()
	require.ErrorIs(t, early.Err(), context.Canceled)
	<-early.Done()
	early.release()
}

type ctxKey struct{}

// TestServerAnswerBeforeSlowOne: the answer to a fast request that came in
// one batch with a slow one goes out when the host nudges.
func TestServerAnswerBeforeSlowOne(t *testing.T) {
	gate := make(chan struct{})
	started := make(chan struct{})
	h := func(ctx context.Context, key, method string, body []byte) ([]byte, error) {
		if method == "wait" {
			close(started)
			<-gate
		}
		return body, nil
	}
	r := newRawPlugin(t, h)
	r.send(t,
		wire.Request{ID: 1, Key: "b", Method: "go"},
		wire.Request{ID: 2, Key: "a", Method: "wait"},
	)
	<-started
	r.s.nudge()
	require.Equal(t, uint64(1), r.recv(t).ID)
	close(gate)
	require.Equal(t, uint64(2), r.recv(t).ID)
}
