package pluginrpc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/internal/wire"
)

// socketPair returns the two ends of a connected Unix socket.
func socketPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	conn := func(fd int) net.Conn {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		return c
	}
	return conn(fds[0]), conn(fds[1])
}

// pipeline is a host conn and a plugin server in this process, joined by a
// socket pair.
type pipeline struct {
	c      *conn
	plugin net.Conn // the plugin's end
	deaths atomic.Int32
	died   chan error // the first death
	stop   func()     // closes the plugin's end and waits for its handlers
}

func newPipeline(t *testing.T, h Handler, timeout time.Duration, cfg serveConfig) *pipeline {
	t.Helper()
	hostEnd, pluginEnd := socketPair(t)
	p := &pipeline{died: make(chan error, 1), plugin: pluginEnd}
	s := newServer(h, pluginEnd, cfg)
	p.c = newConn(hostEnd, wire.NewReader(hostEnd, 4096), make(chan struct{}, 64), timeout, s.nudge, func(err error) {
		if p.deaths.Add(1) == 1 {
			p.died <- err
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.serve(ctx, wire.NewReader(pluginEnd, 4096)) }()
	var once sync.Once
	p.stop = func() {
		once.Do(func() {
			cancel()
			_ = pluginEnd.Close()
			<-served
			s.wg.Wait()
		})
	}
	t.Cleanup(func() {
		p.c.close()
		p.stop()
		require.LessOrEqual(t, p.deaths.Load(), int32(1), "onDeath called more than once")
	})
	return p
}

func (p *pipeline) call(ctx context.Context, key, method string, body []byte) (wire.Response, error) {
	req := wire.Request{Key: key, Method: method, Body: body}
	return p.c.roundTrip(ctx, &req, 10*time.Second)
}

// TestConnStress runs many callers at once over one conn, some of which
// give up early, and checks that every answer reaches its own caller.
func TestConnStress(t *testing.T) {
	h := func(ctx context.Context, key, method string, body []byte) ([]byte, error) {
		if method == "slow" {
			t := time.NewTimer(time.Duration(rand.IntN(2000)) * time.Microsecond)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
			}
		}
		return append([]byte(key+"/"), body...), nil
	}
	p := newPipeline(t, h, 10*time.Second, serveConfig{})
	const goroutines, calls = 24, 150
	var wg sync.WaitGroup
	var abandoned atomic.Int32
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("k%d", g%8)
			for i := range calls {
				ctx := context.Background()
				var cancel context.CancelFunc = func() {}
				if i%7 == 3 {
					ctx, cancel = context.WithTimeout(ctx, time.Duration(rand.IntN(500))*time.Microsecond)
				}
				method := "fast"
				if i%3 == 0 {
					method = "slow"
				}
				body := fmt.Appendf(nil, "%d-%d", g, i)
				resp, err := p.call(ctx, key, method, body)
				cancel()
				if errors.Is(err, context.DeadlineExceeded) {
					abandoned.Add(1)
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				if want := key + "/" + string(body); string(resp.Body) != want {
					errs <- fmt.Errorf("call %s got %q", want, resp.Body)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Zero(t, p.deaths.Load())
	t.Logf("%d calls abandoned", abandoned.Load())

	// An abandoned call stays pending until its late answer is read. The
	// plugin runs a key's calls in order, so one more call of each key
	// brings in every late answer before its own.
	for k := range 8 {
		_, err := p.call(context.Background(), fmt.Sprintf("k%d", k), "fast", nil)
		require.NoError(t, err)
	}
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	require.Empty(t, p.c.pending)
	require.Empty(t, p.c.waiters)
	require.False(t, p.c.reading)
}

func TestConnDeath(t *testing.T) {
	block := make(chan struct{})
	h := func(ctx context.Context, _, _ string, _ []byte) ([]byte, error) {
		<-block
		return nil, nil
	}
	p := newPipeline(t, h, 10*time.Second, serveConfig{})
	const n = 5
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := p.call(context.Background(), "k", "x", nil)
			errs <- err
		}()
	}
	require.Eventually(t, func() bool {
		p.c.mu.Lock()
		defer p.c.mu.Unlock()
		return len(p.c.pending) == n
	}, 5*time.Second, time.Millisecond)
	require.NoError(t, p.plugin.Close()) // as when its process dies
	for range n {
		require.ErrorIs(t, <-errs, ErrPluginDied)
	}
	close(block)
	require.ErrorIs(t, <-p.died, ErrPluginDied)
	_, err := p.call(context.Background(), "k", "x", nil)
	require.ErrorIs(t, err, ErrPluginDied)
	require.Equal(t, int32(1), p.deaths.Load())
}

func TestConnTimeout(t *testing.T) {
	release := make(chan struct{})
	h := func(ctx context.Context, _, method string, _ []byte) ([]byte, error) {
		if method == "hang" {
			<-release
		}
		return []byte("ok"), nil
	}
	hostEnd, pluginEnd := socketPair(t)
	deaths := make(chan error, 2)
	s := newServer(h, pluginEnd, serveConfig{})
	c := newConn(hostEnd, wire.NewReader(hostEnd, 4096), make(chan struct{}, 64), time.Second, s.nudge, func(err error) { deaths <- err })
	go func() { _ = s.serve(context.Background(), wire.NewReader(pluginEnd, 4096)) }()
	defer func() {
		close(release)
		_ = pluginEnd.Close()
		s.wg.Wait()
	}()

	// Two callers: the one waiting on the hung call is the reader or
	// parked, depending on who came first; both must see the death.
	errs := make(chan error, 2)
	for _, m := range []string{"hang", "hang"} {
		go func() {
			req := wire.Request{Key: m, Method: m}
			_, err := c.roundTrip(context.Background(), &req, 200*time.Millisecond)
			errs <- err
		}()
	}
	for range 2 {
		err := <-errs
		require.ErrorIs(t, err, ErrPluginDied)
		require.ErrorIs(t, err, ErrTimeout)
	}
	require.ErrorIs(t, <-deaths, ErrTimeout)
	require.Empty(t, deaths)
}

func TestConnMalformed(t *testing.T) {
	p := newPipeline(t, newTestHandler().handle, 10*time.Second,
		serveConfig{malformed: func(m string) bool { return m == "malformed" }})
	_, err := p.call(context.Background(), "k", "malformed", nil)
	require.ErrorIs(t, err, ErrPluginDied)
	require.ErrorIs(t, err, ErrMalformed)
	require.ErrorIs(t, err, wire.ErrMalformed)
}

func TestConnLateAnswerDropped(t *testing.T) {
	gate := make(chan struct{})
	h := func(ctx context.Context, _, method string, body []byte) ([]byte, error) {
		if method == "late" {
			<-gate // answers whatever ctx says, after the caller gave up
		}
		return body, nil
	}
	p := newPipeline(t, h, 10*time.Second, serveConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := p.call(ctx, "k", "late", nil)
	require.ErrorIs(t, err, context.Canceled)

	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = p.call(ctx, "k", "late", []byte("late"))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	close(gate)
	// The late answer comes first on the socket, and is dropped.
	resp, err := p.call(context.Background(), "k", "echo", []byte("next"))
	require.NoError(t, err)
	require.Equal(t, "next", string(resp.Body))
	require.Zero(t, p.deaths.Load())
}

// FuzzConnResponses feeds a conn arbitrary bytes as the plugin's answers:
// a call must end with an answer or an error, never a panic or a hang.
func FuzzConnResponses(f *testing.F) {
	ok, err := wire.AppendFrame(nil, &wire.Response{ID: 1, Body: []byte("x")})
	require.NoError(f, err)
	f.Add(ok)
	f.Add([]byte{0, 0, 0, 2, 0x91, 0xc1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add(append(ok[:len(ok):len(ok)], 0, 0, 0, 1))
	f.Fuzz(func(t *testing.T, answers []byte) {
		hostEnd, pluginEnd := socketPair(t)
		defer func() { _ = pluginEnd.Close() }()
		c := newConn(hostEnd, wire.NewReader(hostEnd, 64), make(chan struct{}, 4), time.Second, nil, func(error) {})
		defer c.close()
		go func() {
			_, _ = wire.NewReader(pluginEnd, 64).Next() // the request
			_, _ = pluginEnd.Write(answers)
			_ = pluginEnd.Close()
		}()
		req := wire.Request{Key: "k", Method: "m"}
		resp, err := c.roundTrip(context.Background(), &req, time.Second)
		if err == nil {
			require.Equal(t, uint64(1), resp.ID)
			return
		}
		require.ErrorIs(t, err, ErrPluginDied)
		require.NotErrorIs(t, err, ErrTimeout)
	})
}

// TestConnHangUnderTraffic: a call that hangs while other calls are
// answered all along is found out by whoever reads, at its deadline.
func TestConnHangUnderTraffic(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	h := func(ctx context.Context, _, method string, _ []byte) ([]byte, error) {
		if method == "hang" {
			<-release
		}
		return []byte("ok"), nil
	}
	hostEnd, pluginEnd := socketPair(t)
	s := newServer(h, pluginEnd, serveConfig{})
	c := newConn(hostEnd, wire.NewReader(hostEnd, 4096), make(chan struct{}, 64), 300*time.Millisecond, s.nudge, func(error) {})
	go func() { _ = s.serve(context.Background(), wire.NewReader(pluginEnd, 4096)) }()
	defer func() {
		c.close()
		_ = pluginEnd.Close()
		<-s.ended
	}()

	start := time.Now()
	hung := make(chan error, 1)
	go func() {
		req := wire.Request{Key: "stuck", Method: "hang"}
		_, err := c.roundTrip(context.Background(), &req, 300*time.Millisecond)
		hung <- err
	}()
	for answered := 0; ; answered++ {
		req := wire.Request{Key: "busy", Method: "echo"}
		_, err := c.roundTrip(context.Background(), &req, 300*time.Millisecond)
		if err != nil {
			require.ErrorIs(t, err, ErrTimeout)
			require.Greater(t, answered, 0)
			break
		}
	}
	err := <-hung
	require.ErrorIs(t, err, ErrPluginDied)
	require.ErrorIs(t, err, ErrTimeout)
	elapsed := time.Since(start)
	require.GreaterOrEqual(t, elapsed, 300*time.Millisecond)
	require.Less(t, elapsed, 300*time.Millisecond+checkEvery+time.Second)
}

// TestConnNudge: a call behind a slow handler of another key is answered
// once the host nudges the plugin, about nudgeAfter later.
func TestConnNudge(t *testing.T) {
	gate := make(chan struct{})
	started := make(chan struct{})
	h := func(ctx context.Context, _, method string, _ []byte) ([]byte, error) {
		if method == "slow" {
			close(started)
			<-gate
		}
		return []byte(method), nil
	}
	p := newPipeline(t, h, 10*time.Second, serveConfig{})
	slow := make(chan error, 1)
	go func() {
		_, err := p.call(context.Background(), "a", "slow", nil)
		slow <- err
	}()
	<-started
	start := time.Now()
	resp, err := p.call(context.Background(), "b", "fast", nil)
	require.NoError(t, err)
	require.Equal(t, "fast", string(resp.Body))
	require.GreaterOrEqual(t, time.Since(start), nudgeAfter/2)
	close(gate)
	require.NoError(t, <-slow)
}
