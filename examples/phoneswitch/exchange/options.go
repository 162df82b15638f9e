package exchange

import (
	"log/slog"
	"time"

	"github.com/hotline-go/hotline/upgrade"
)

// Defaults of the options of [New].
const (
	DefaultWriteQueue   = 256
	DefaultStallTimeout = 5 * time.Second
	DefaultCallTimeout  = 10 * time.Second
	DefaultStartTimeout = 30 * time.Second
)

// An Option configures a [Switch]; pass them to [New].
type Option func(*config)

type config struct {
	logger       *slog.Logger
	now          func() time.Time
	writeQueue   int
	stallTimeout time.Duration
	callTimeout  time.Duration
	startTimeout time.Duration
	handoff      *upgrade.Handoff
}

// WithLogger sets the logger. The default is [slog.Default].
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithClock sets the clock that stamps the time of answers. The default is
// [time.Now].
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithWriteQueue bounds the lines waiting to be written on one connection.
// The default is [DefaultWriteQueue].
func WithWriteQueue(n int) Option { return func(c *config) { c.writeQueue = n } }

// WithStallTimeout sets how long a connection's full queue, or one write,
// may block before the connection is closed as too slow. The default is
// [DefaultStallTimeout].
func WithStallTimeout(d time.Duration) Option { return func(c *config) { c.stallTimeout = d } }

// WithCallTimeout bounds each event sent to a machine. The default is
// [DefaultCallTimeout].
func WithCallTimeout(d time.Duration) Option { return func(c *config) { c.callTimeout = d } }

// WithStartTimeout bounds the start of a phone's machine, which waits
// while an upgrade cuts or a rolling rollout runs. The default is
// [DefaultStartTimeout].
func WithStartTimeout(d time.Duration) Option { return func(c *config) { c.startTimeout = d } }

// WithHandoff registers every phone's machine and connection with h, so
// that a binary restart hands them to the new process; see
// [Switch.Restore] for that process's side. The default is none: a binary
// restart leaves the calls in progress to the old process.
func WithHandoff(h *upgrade.Handoff) Option { return func(c *config) { c.handoff = h } }
