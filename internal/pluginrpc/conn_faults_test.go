package pluginrpc

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/internal/wire"
)

// fakePlugin is a host conn whose plugin end the test plays by hand: it
// reads the requests and writes whatever bytes it likes.
type fakePlugin struct {
	c    *conn
	nc   net.Conn // the plugin's end
	rd   *wire.Reader
	died chan error // the conn's death, once
}

func newFakePlugin(t *testing.T, timeout time.Duration) *fakePlugin {
	t.Helper()
	hostEnd, pluginEnd := socketPair(t)
	f := &fakePlugin{nc: pluginEnd, rd: wire.NewReader(pluginEnd, 4096), died: make(chan error, 1)}
	f.c = newConn(hostEnd, wire.NewReader(hostEnd, 4096), make(chan struct{}, 64), timeout, nil,
		func(err error) { f.died <- err })
	t.Cleanup(func() {
		f.c.close()
		_ = pluginEnd.Close()
	})
	return f
}

// result is what a call returned.
type result struct {
	resp wire.Response
	err  error
}

// call starts a call; its result comes on the channel.
func (f *fakePlugin) call(ctx context.Context, key, method string) <-chan result {
	ch := make(chan result, 1)
	go func() {
		req := wire.Request{Key: key, Method: method}
		resp, err := f.c.roundTrip(ctx, &req, f.timeout())
		ch <- result{resp, err}
	}()
	return ch
}

func (f *fakePlugin) timeout() time.Duration { return f.c.w.timeout }

// request reads the next request the host sent.
func (f *fakePlugin) request(t *testing.T) wire.Request {
	t.Helper()
	msg, err := f.rd.Next()
	require.NoError(t, err)
	var req wire.Request
	require.NoError(t, req.Decode(msg))
	return req
}

// answer writes an answer with id and body.
func (f *fakePlugin) answer(t *testing.T, id uint64, body string) {
	t.Helper()
	frame, err := wire.AppendFrame(nil, &wire.Response{ID: id, Body: []byte(body)})
	require.NoError(t, err)
	f.raw(t, frame)
}

func (f *fakePlugin) raw(t *testing.T, b []byte) {
	t.Helper()
	_, err := f.nc.Write(b)
	require.NoError(t, err)
}

// An answer that no call awaits (for an id never sent, or answered
// already) is a broken plugin: the calls in flight fail at once with
// ErrMalformed naming the id, instead of waiting for the call timeout and
// blaming a hang.
func TestConnAnswerNoCallAwaits(t *testing.T) {
	for _, tt := range []struct {
		name string
		id   func(first, second uint64) uint64
		text string
	}{
		{"id never sent", func(_, second uint64) uint64 { return second + 40 }, "answer to call 42, which was never sent"},
		{"id zero", func(uint64, uint64) uint64 { return 0 }, "answer to call 0, which was never sent"},
		{"duplicate", func(first, _ uint64) uint64 { return first }, "answer to call 1, which was answered already"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakePlugin(t, 2*time.Second)
			ctx := context.Background()
			first := f.call(ctx, "a", "m")
			r1 := f.request(t)
			f.answer(t, r1.ID, "one")
			res := <-first
			require.NoError(t, res.err)
			require.Equal(t, "one", string(res.resp.Body))

			second := f.call(ctx, "b", "m")
			r2 := f.request(t)
			f.answer(t, tt.id(r1.ID, r2.ID), "stray")
			res = <-second
			require.ErrorIs(t, res.err, ErrPluginDied)
			require.ErrorIs(t, res.err, ErrMalformed)
			require.NotErrorIs(t, res.err, ErrTimeout)
			require.ErrorContains(t, res.err, tt.text)
			require.ErrorIs(t, <-f.died, ErrMalformed)
		})
	}
}

// Broken frames from the plugin: each fails the calls in flight with a
// cause that says what was wrong.
func TestConnBrokenFrames(t *testing.T) {
	for _, tt := range []struct {
		name  string
		bytes []byte
		want  []error
		text  string
	}{
		{"length over MaxFrameSize", []byte{0xff, 0xff, 0xff, 0xff}, []error{ErrMalformed, wire.ErrFrameTooLarge},
			"malformed message from plugin: wire: frame too large: 4294967295 bytes"},
		{"truncated frame", []byte{0, 0, 0, 100, 0x96, 0x05}, []error{io.ErrUnexpectedEOF},
			"unexpected EOF: the stream ended 6 bytes into a frame"},
		{"truncated length", []byte{0, 0}, []error{io.ErrUnexpectedEOF},
			"unexpected EOF: the stream ended 2 bytes into a frame"},
		{"not a Response", []byte{0, 0, 0, 2, 0x91, 0x04}, []error{ErrMalformed, wire.ErrMalformed}, "Response"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakePlugin(t, 2*time.Second)
			ch := f.call(context.Background(), "a", "m")
			f.request(t)
			f.raw(t, tt.bytes)
			require.NoError(t, f.nc.Close())
			res := <-ch
			require.ErrorIs(t, res.err, ErrPluginDied)
			for _, w := range tt.want {
				require.ErrorIs(t, res.err, w)
			}
			require.ErrorContains(t, res.err, tt.text)
			require.ErrorIs(t, <-f.died, ErrPluginDied)
		})
	}
}

// A call whose caller gave up is still owed an answer within the call
// timeout: a plugin that hangs on it is found out (by whoever reads), not
// left holding a goroutine and its key forever while other calls are
// answered.
func TestConnAbandonedCallHeldToTheTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	f := newFakePlugin(t, timeout)
	ctx, cancel := context.WithCancel(context.Background())
	sent := time.Now()
	abandoned := f.call(ctx, "stuck", "never")
	f.request(t)
	cancel()
	require.ErrorIs(t, (<-abandoned).err, context.Canceled)

	// The plugin answers every other call, and never the abandoned one.
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			msg, err := f.rd.Next()
			if err != nil {
				return // the host killed the conn
			}
			var req wire.Request
			if req.Decode(msg) != nil {
				return
			}
			frame, err := wire.AppendFrame(nil, &wire.Response{ID: req.ID, Body: []byte("ok")})
			if err != nil {
				return
			}
			if _, err := f.nc.Write(frame); err != nil {
				return
			}
		}
	})
	defer wg.Wait()
	defer func() { _ = f.nc.Close() }() // first: ends the answering goroutine
	start := time.Now()
	for {
		require.Less(t, time.Since(start), 50*timeout, "the hung call was not found out") // a generous bound: the runner may be loaded
		res := <-f.call(context.Background(), "busy", "echo")
		if res.err != nil {
			require.ErrorIs(t, res.err, ErrPluginDied)
			require.ErrorIs(t, res.err, ErrTimeout)
			break
		}
	}
	require.GreaterOrEqual(t, time.Since(sent), timeout, "not before the call timeout")
	require.ErrorIs(t, <-f.died, ErrTimeout)
}

// A call abandoned by a cancel (no deadline of its own) whose handler
// honours its context answers at the call timeout; that late answer comes
// in time, within the grace given to an abandoned call: the plugin is not
// taken for hung.
func TestConnCancelledCallAnsweredAtItsDeadline(t *testing.T) {
	const timeout = 200 * time.Millisecond
	h := func(ctx context.Context, _, method string, _ []byte) ([]byte, error) {
		if method == "wait" {
			<-ctx.Done() // until the deadline the host gave it
			return nil, ctx.Err()
		}
		return []byte("ok"), nil
	}
	p := newPipeline(t, h, timeout, serveConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		req := wire.Request{Key: "w", Method: "wait"}
		_, err := p.c.roundTrip(ctx, &req, timeout)
		done <- err
	}()
	require.Eventually(t, func() bool {
		p.c.mu.Lock()
		defer p.c.mu.Unlock()
		return len(p.c.pending) == 1
	}, 5*time.Second, time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)

	// Other calls go on until the late answer has been read.
	for {
		req := wire.Request{Key: "busy", Method: "echo"}
		_, err := p.c.roundTrip(context.Background(), &req, timeout)
		require.NoError(t, err)
		p.c.mu.Lock()
		n := len(p.c.pending)
		p.c.mu.Unlock()
		if n == 0 {
			break
		}
	}
	require.Zero(t, p.deaths.Load())
}

// Two slow handlers of different keys at once on one connection: each
// holds up the plugin's reading in turn, and each needs a nudge. A call
// behind both is answered (one nudge for the oldest call alone left the
// second slow handler holding the reading until the call timeout killed
// the plugin, and every call in flight with it).
func TestConnTwoSlowHandlers(t *testing.T) {
	gate := make(chan struct{})
	started := make(chan string, 2)
	h := func(ctx context.Context, key, method string, _ []byte) ([]byte, error) {
		if method == "slow" {
			started <- key
			<-gate
		}
		return []byte(method), nil
	}
	p := newPipeline(t, h, 2*time.Second, serveConfig{})
	var once sync.Once
	open := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(open) // before the pipeline's, which waits for the handlers
	slow := make(chan error, 2)
	for _, key := range []string{"a", "b"} {
		go func() {
			_, err := p.call(context.Background(), key, "slow", nil)
			slow <- err
		}()
		require.Equal(t, key, <-started) // b is read once a's handler was nudged off the reading
	}
	resp, err := p.call(context.Background(), "c", "fast", nil)
	require.NoError(t, err)
	require.Equal(t, "fast", string(resp.Body))
	open()
	require.NoError(t, <-slow)
	require.NoError(t, <-slow)
	require.Zero(t, p.deaths.Load())
}
