package pluginrpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotline-go/hotline/internal/wire"
)

// Client runs one plugin binary and makes calls to it. It starts the
// process on first use (or [Client.Start]), restarts it after it dies, and
// stops it on [Client.Close]. It is safe for concurrent use: calls from any
// number of goroutines share the process and are pipelined on its pool of
// event connections ([WithConns]).
//
// A Client must be made with [New] and must not be copied.
type Client struct {
	path string
	sum  []byte
	cfg  config
	log  *slog.Logger
	quit chan struct{} // closed by Close: ends a backoff wait
	wg   sync.WaitGroup

	// abort is the context of the processes' commands; Close cancels it
	// (once it has stopped the running process), which kills a process
	// still starting: go-plugin's start cannot be interrupted otherwise,
	// and Close would wait for the start timeout.
	abort  context.Context
	cancel context.CancelFunc

	// failures mirrors fails, so that a call that was answered need not
	// take the lock when there is nothing to reset.
	failures atomic.Int32

	mu       sync.Mutex
	cur      *proc         // the process serving calls, if one runs
	starting *startAttempt // the start in progress, if any
	fails    int           // deaths and failed starts in a row, with no call answered between
	lastErr  error         // the last death or failed start
	gaveUp   error         // ErrCrashLoop once fails went past cfg.maxRestarts
	closed   bool
	holds    int       // Hold's shares not yet released
	unheld   bool      // the last hold was released while a process was starting: stop it once started
	idle     stopTimer // the pending stop of an unused process (cfg.idleStop > 0)
	idleGen  uint64    // bumped by each Hold: a stop armed before it is stale
	stats    Stats
	manifest Manifest
}

// startAttempt is one start of the process; done is closed when it ends.
type startAttempt struct {
	done chan struct{}
	p    *proc
	err  error
}

// Stats counts what happened to a Client's processes.
type Stats struct {
	Starts       int // processes started and connected, the first one included
	FailedStarts int // starts that failed
	Deaths       int // processes that died, hung or broke the stream
	Stops        int // processes stopped because the last Hold was released
	PID          int // the running process's id; 0 if none runs
}

// New returns a Client for the plugin binary at path, whose SHA-256 must be
// checksum (see [FileChecksum] and [ParseChecksum]). It starts nothing:
// the process is started by [Client.Start] or by the first call.
func New(path string, checksum []byte, opts ...Option) *Client {
	cfg := newConfig(path, opts)
	abort, cancel := context.WithCancel(context.Background())
	return &Client{
		path:   path,
		sum:    slices.Clone(checksum),
		cfg:    cfg,
		log:    cfg.logger.With("plugin", cfg.name),
		quit:   make(chan struct{}),
		abort:  abort,
		cancel: cancel,
	}
}

// Name returns the plugin's name, as errors and logs give it.
func (c *Client) Name() string { return c.cfg.name }

// Start starts the plugin process unless one runs, and waits until it has
// verified the binary's checksum, run it, completed the handshake and
// connected to it. Its errors match [ErrNotFound], [ErrChecksum],
// [ErrHandshake], [ErrProtocol], [ErrWrongMachine], [ErrSocketDir],
// [ErrStart], [ErrCrashLoop] or [ErrClosed], wrapped in an [*Error]. If ctx
// ends first, Start returns its error and the start goes on for the next
// caller.
func (c *Client) Start(ctx context.Context) error {
	_, err := c.proc(ctx)
	return c.wrap(err)
}

// Manifest returns what the plugin serves, as its last process said; the
// zero Manifest before a process has started.
func (c *Client) Manifest() Manifest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Manifest{Machine: c.manifest.Machine, Versions: slices.Clone(c.manifest.Versions)}
}

// Stats returns the Client's counts.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Call sends one call to the plugin and waits for its answer, once: it
// starts the process first if none runs. key is the ordering key (calls
// with one key run in the plugin one at a time, in the order they were
// sent); method and body are the handler's.
//
// Call returns the handler's result; a [*RemoteError] if the handler
// returned an error; a [*PanicError] if it panicked. Other failures come
// as an [*Error] naming the plugin: [ErrPluginDied] (the call may be sent
// again: see [Client.Do]) with its cause, [ErrTimeout] or [ErrMalformed]
// among them; ctx's error, if ctx ended first (the call may still run in
// the plugin; its answer is dropped); [ErrTooLarge]; or an error of
// [Client.Start].
func (c *Client) Call(ctx context.Context, key, method string, body []byte) ([]byte, error) {
	out, _, err := c.call(ctx, key, method, body)
	return out, err
}

// call is Call, which also returns the process the call went to (nil if
// none ran).
func (c *Client) call(ctx context.Context, key, method string, body []byte) ([]byte, *proc, error) {
	p, err := c.proc(ctx)
	if err != nil {
		return nil, nil, c.wrap(err)
	}
	out, err := c.callOn(ctx, p, key, method, body)
	return out, p, err
}

func (c *Client) callOn(ctx context.Context, p *proc, key, method string, body []byte) ([]byte, error) {
	req := wire.Request{Key: key, Method: method, Body: body}
	resp, err := p.connFor(key).roundTrip(ctx, &req, c.cfg.callTimeout)
	if err != nil {
		return nil, c.wrap(err)
	}
	if c.failures.Load() != 0 {
		c.answered()
	}
	switch resp.Status {
	case wire.StatusOK:
		return resp.Body, nil
	case wire.StatusPanic:
		return nil, &PanicError{Plugin: c.cfg.name, Value: resp.Message, Stack: resp.Stack}
	default:
		return nil, &RemoteError{Plugin: c.cfg.name, Message: resp.Message}
	}
}

// Do is [Client.Call], delivered again each time the plugin dies with it in
// flight, up to [WithRedeliveries] times; the process is restarted before
// each delivery. This is safe because the plugin keeps nothing between
// calls: what a handler needs comes in the call, and what it changes goes
// back in the answer. A call that died on every delivery fails with
// [ErrCrashLoop], wrapping the last cause.
//
// Each delivery goes to a process other than the one the last died in:
// the conn wakes the calls in flight as it dies, and a woken Do must not
// find the dead process still current (before the conn has told the
// Client) and spend every delivery on it at once, so Do retires it first.
func (c *Client) Do(ctx context.Context, key, method string, body []byte) ([]byte, error) {
	for n := 1; ; n++ {
		out, p, err := c.call(ctx, key, method, body)
		var died *diedError
		if !errors.As(err, &died) {
			return out, err
		}
		if p != nil {
			c.onDeath(p, died) // a no-op if the conn has told the Client already
		}
		if n > c.cfg.redeliveries {
			return nil, &Error{Plugin: c.cfg.name,
				Err: fmt.Errorf("%w: the call died in each of %d deliveries, the last time: %w", ErrCrashLoop, n, died.cause)}
		}
		c.log.Info("delivering a call again", "delivery", n+1, "method", method, "cause", died.cause)
	}
}

// Hold marks the plugin as in use (by a machine that runs its code) until
// release is called. When the last hold is released, the process is
// stopped, and the next call or [Client.Start] starts it again: a plugin
// whose machines have all stopped costs no process. A process that runs
// with no hold ever taken (after Start, or calls made without one) keeps
// running: only the release of the last hold stops it. Calls still in
// flight then fail as if the process had died ([ErrPluginDied]; [Client.Do]
// delivers them again, to a new process). A process that was starting
// when the last hold was released is stopped once it has started. Calling
// release more than once releases once.
func (c *Client) Hold() (release func()) {
	c.mu.Lock()
	c.holds++
	c.unheld = false
	c.idleGen++
	if c.idle != nil {
		c.idle.Stop()
		c.idle = nil
	}
	c.mu.Unlock()
	var once sync.Once
	return func() { once.Do(c.unhold) }
}

// stopTimer is the part of *time.Timer the idle stop uses.
type stopTimer interface{ Stop() bool }

// afterFunc arms the idle stop; a test seam.
var afterFunc = func(d time.Duration, f func()) stopTimer { return time.AfterFunc(d, f) }

// unhold releases one hold, and stops the process at the last: at once,
// or after the idle grace ([WithIdleStop]) if no hold is taken meanwhile.
func (c *Client) unhold() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holds--
	if c.holds > 0 || c.closed {
		return
	}
	if c.cur == nil {
		// A process that starts now would run for no one (its start
		// outlived the caller that asked for it): started stops it.
		c.unheld = c.starting != nil
		return
	}
	c.stopIdleLocked()
}

// stopIdleLocked stops the running process, which no hold uses any more:
// at once, or after the idle grace if no hold is taken meanwhile. c.mu is
// held.
func (c *Client) stopIdleLocked() {
	if c.cfg.idleStop <= 0 {
		c.stopUnusedLocked()
		return
	}
	gen := c.idleGen
	c.idle = afterFunc(c.cfg.idleStop, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if gen != c.idleGen || c.holds > 0 || c.closed || c.cur == nil {
			return // held again, or closed, meanwhile
		}
		c.idle = nil
		c.stopUnusedLocked()
	})
}

// stopUnusedLocked stops the running process, which no machine uses;
// c.mu is held.
func (c *Client) stopUnusedLocked() {
	p := c.cur
	c.cur = nil
	c.stats.Stops++
	c.stats.PID = 0
	c.wg.Add(1)
	c.log.Info("plugin stopped: no machine uses it", "pid", p.pid)
	go func() {
		defer c.wg.Done()
		p.die(errUnused)
		p.kill(false)
	}()
}

// errUnused is why the calls in flight when the last hold was released
// fail.
var errUnused = errors.New("stopped: the last machine that used it was released")

// Close stops the plugin process, fails the calls in flight with
// [ErrClosed], and waits for the Client's goroutines. A process being
// started is stopped once started. Calls after Close return ErrClosed.
// Close returns nil; calling it again does nothing.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.quit)
	if c.idle != nil {
		c.idle.Stop()
		c.idle = nil
	}
	p := c.cur
	c.cur = nil
	c.stats.PID = 0
	c.mu.Unlock()
	if p != nil {
		p.kill(false)
		c.log.Info("plugin stopped", "pid", p.pid)
	}
	c.cancel() // kills a process still starting; the running one was stopped gracefully
	c.wg.Wait()
	return nil
}

// proc returns the running process, starting one if none runs.
func (c *Client) proc(ctx context.Context) (*proc, error) {
	c.mu.Lock()
	for {
		switch {
		case c.closed:
			c.mu.Unlock()
			return nil, ErrClosed
		case c.cur != nil:
			p := c.cur
			c.mu.Unlock()
			return p, nil
		case c.gaveUp != nil:
			err := c.gaveUp
			c.mu.Unlock()
			return nil, err
		}
		a := c.starting
		if a == nil {
			if c.fails > c.cfg.maxRestarts {
				c.gaveUp = fmt.Errorf("%w: it died or failed to start %d times in a row, the last time: %w",
					ErrCrashLoop, c.fails, unwrapError(c.lastErr))
				c.log.Error("plugin keeps crashing: giving up", "failures", c.fails, "error", c.lastErr)
				continue
			}
			a = &startAttempt{done: make(chan struct{})}
			c.starting = a
			c.wg.Add(1)
			go c.start(a, c.backoff())
		}
		c.mu.Unlock()
		select {
		case <-a.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if a.err != nil {
			return nil, a.err
		}
		c.mu.Lock()
	}
}

// backoff is the wait before the next start. c.mu is held.
func (c *Client) backoff() time.Duration {
	if c.fails == 0 {
		return 0
	}
	d := c.cfg.backoffMax
	if shift := c.fails - 1; shift < 32 {
		d = min(c.cfg.backoffMin<<shift, d)
	}
	return d
}

// start runs one start attempt, after waiting delay.
func (c *Client) start(a *startAttempt, delay time.Duration) {
	defer c.wg.Done()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-c.quit:
			t.Stop()
			c.started(a, nil, ErrClosed)
			return
		}
	}
	p, err := launch(c.abort, c.path, c.sum, &c.cfg, c.log, c.onDeath)
	c.started(a, p, err)
}

// started records the end of a start attempt.
func (c *Client) started(a *startAttempt, p *proc, err error) {
	c.mu.Lock()
	c.starting = nil
	switch {
	case c.closed:
		c.mu.Unlock()
		if p != nil {
			p.kill(false)
		}
		a.err = ErrClosed
	case err != nil:
		a.err = &Error{Plugin: c.cfg.name, Err: err}
		c.fail(a.err)
		c.stats.FailedStarts++
		c.mu.Unlock()
		c.log.Warn("plugin did not start", "error", err)
	default:
		c.cur, a.p = p, p
		c.stats.Starts++
		c.stats.PID = p.pid
		c.manifest = p.manifest
		n := c.stats.Starts
		c.log.Info("plugin started", "pid", p.pid, "starts", n, "machine", p.manifest.Machine, "versions", p.manifest.Versions)
		if c.unheld && c.holds == 0 {
			c.stopIdleLocked() // the last hold went while it started
		}
		c.unheld = false
		c.mu.Unlock()
	}
	close(a.done)
}

// onDeath is called by a process's conn when it dies.
func (c *Client) onDeath(p *proc, err error) {
	c.mu.Lock()
	if c.cur != p || c.closed {
		c.mu.Unlock()
		return
	}
	c.cur = nil
	c.fail(err)
	c.stats.Deaths++
	c.stats.PID = 0
	c.wg.Add(1)
	c.mu.Unlock()
	c.log.Warn("plugin died", "pid", p.pid, "error", err)
	var died *diedError
	if !errors.As(err, &died) {
		died = &diedError{cause: err}
	}
	go func() {
		defer c.wg.Done()
		p.killDead(died)
	}()
}

// fail counts a death or a failed start. c.mu is held.
func (c *Client) fail(err error) {
	c.fails++
	c.failures.Store(int32(min(c.fails, 1<<30)))
	c.lastErr = err
}

// answered resets the count of failures after an answered call.
func (c *Client) answered() {
	c.mu.Lock()
	c.fails = 0
	c.failures.Store(0)
	c.mu.Unlock()
}

// wrap names the plugin in err, unless it does already.
func (c *Client) wrap(err error) error {
	if err == nil {
		return nil
	}
	if e, ok := err.(*Error); ok {
		return e
	}
	return &Error{Plugin: c.cfg.name, Err: err}
}

// unwrapError takes the cause out of an *Error, whose plugin name the
// error it goes into will give again.
func unwrapError(err error) error {
	if e, ok := err.(*Error); ok {
		return e.Err
	}
	return err
}
