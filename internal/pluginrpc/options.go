package pluginrpc

import (
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/hotline-go/hotline/internal/wire"
)

// An Option configures a [Client] (and, given to [NewLoader], every Client
// the Loader makes).
type Option func(*config)

type config struct {
	name         string
	logger       *slog.Logger
	machine      string
	callTimeout  time.Duration
	startTimeout time.Duration
	maxRestarts  int
	backoffMin   time.Duration
	backoffMax   time.Duration
	redeliveries int
	maxInFlight  int
	conns        int
	socketDir    string
	idleStop     time.Duration
	env          []string // test seam: extra environment for the plugin
}

func newConfig(path string, opts []Option) config {
	c := config{
		name:         path,
		logger:       slog.Default(),
		callTimeout:  5 * time.Second,
		startTimeout: 10 * time.Second,
		maxRestarts:  5,
		backoffMin:   10 * time.Millisecond,
		backoffMax:   2 * time.Second,
		redeliveries: 3,
		maxInFlight:  256,
		conns:        defaultConns(),
		socketDir:    os.TempDir(),
	}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithIdleStop keeps a process whose last [Client.Hold] was released
// running for d before it is stopped; a hold taken meanwhile keeps it. A
// rollback soon after an upgrade then finds the old version's process
// still running instead of starting one inside the machines' suspension.
// The default, 0, stops it at once.
func WithIdleStop(d time.Duration) Option { return func(c *config) { c.idleStop = d } }

// WithName sets the plugin's name in errors and logs. The default is the
// binary's path.
func WithName(name string) Option { return func(c *config) { c.name = name } }

// WithLogger sets where the host logs the plugin's life (starts, deaths,
// restarts), go-plugin's own messages, and every line the plugin writes to
// its stdout or stderr (at Info, with "stream" set to "stdout" or
// "stderr"; lines the plugin logs with hclog in JSON keep their level).
// Each record carries "plugin" with the plugin's name. The default is
// [slog.Default] at the time the Client is made.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithMachine makes the host refuse a plugin that does not serve the named
// machine, with [ErrWrongMachine]. The default, "", accepts any.
func WithMachine(name string) Option { return func(c *config) { c.machine = name } }

// WithCallTimeout sets how long the plugin has to answer a call. A plugin
// that does not answer in time is taken for hung: it is killed, every call
// in flight fails with [ErrPluginDied] and [ErrTimeout], and the next call
// restarts it. A caller's context may set an earlier deadline; that one
// only abandons the call (the late answer is dropped). The default is 5
// seconds; d <= 0 keeps it.
func WithCallTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.callTimeout = d
		}
	}
}

// WithStartTimeout sets how long a plugin process has, from its start, to
// complete the handshake and open its event socket. The default is 10
// seconds; d <= 0 keeps it.
func WithStartTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.startTimeout = d
		}
	}
}

// WithMaxRestarts sets how many times in a row the process may die or fail
// to start, with no call answered between, before the Client gives up with
// [ErrCrashLoop]. The default is 5; n < 0 keeps it.
func WithMaxRestarts(n int) Option {
	return func(c *config) {
		if n >= 0 {
			c.maxRestarts = n
		}
	}
}

// WithRestartBackoff sets the wait before a restart: lo after the first
// failure, doubling with each failure in a row, at most hi. The default is
// 10ms to 2s; values <= 0 keep the default.
func WithRestartBackoff(lo, hi time.Duration) Option {
	return func(c *config) {
		if lo > 0 {
			c.backoffMin = lo
		}
		if hi > 0 {
			c.backoffMax = hi
		}
		c.backoffMax = max(c.backoffMin, c.backoffMax)
	}
}

// WithRedeliveries sets how many times [Client.Do] delivers a call again
// after the plugin died with it in flight. The default is 3; n < 0 keeps
// it.
func WithRedeliveries(n int) Option {
	return func(c *config) {
		if n >= 0 {
			c.redeliveries = n
		}
	}
}

// WithMaxInFlight caps the calls in flight to one plugin process; more
// callers wait for a slot. The cap bounds what the plugin queues. The
// default is 256; n <= 0 keeps it.
func WithMaxInFlight(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxInFlight = n
		}
	}
}

// WithSocketDir sets the directory in which the host makes, for each plugin
// process, a private directory (mode 0700) for its Unix sockets, removed
// when the process is stopped. A socket path must fit in 108 bytes, so the
// directory's path should be short. The default is [os.TempDir].
func WithSocketDir(dir string) Option { return func(c *config) { c.socketDir = dir } }

// withEnv adds variables to the plugin's environment (test seam).
func withEnv(kv ...string) Option { return func(c *config) { c.env = append(c.env, kv...) } }

// WithConns sets how many event connections the host opens to each plugin
// process. The calls of one key (one machine) always go over the same
// connection, in order; calls of different keys spread over the pool, and
// the plugin serves each connection on its own goroutine, so machines busy
// at once can use more than one core of the plugin; each connection also
// batches less (fewer requests per read, answers per write), which costs
// the plugin CPU per call. The default is GOMAXPROCS/2 at the time the
// Client is made, at least 1 and at most 4: one connection on 2 cores,
// where a pool was measured to bring no throughput (doc/plugins.md says
// why). n is clamped to 1 to 64; n <= 0 keeps the default.
func WithConns(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.conns = min(n, wire.MaxConns)
		}
	}
}

// defaultConns is WithConns's default.
func defaultConns() int { return max(1, min(runtime.GOMAXPROCS(0)/2, 4)) }
