package upgrade

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Defaults of the options of [NewRestarter].
const (
	// DefaultUpgradeTimeout is how long a new process has to call
	// [Restarter.Ready] before it is killed; see [WithUpgradeTimeout].
	DefaultUpgradeTimeout = time.Minute
	// DefaultDrainTimeout bounds the drain hooks; see [WithDrainTimeout].
	DefaultDrainTimeout = 30 * time.Second
)

// A RestartOption configures a [Restarter]; pass them to [NewRestarter].
type RestartOption func(*restartConfig)

type restartConfig struct {
	logger         *slog.Logger
	pidFile        string
	upgradeTimeout time.Duration
	drainTimeout   time.Duration
	lameDuck       time.Duration
	signals        []os.Signal

	// Test seams: how signals are subscribed to and released.
	notify     func(c chan<- os.Signal, sig ...os.Signal)
	stopNotify func(c chan<- os.Signal)
}

func defaultRestartConfig() restartConfig {
	return restartConfig{
		logger:         slog.Default(),
		upgradeTimeout: DefaultUpgradeTimeout,
		drainTimeout:   DefaultDrainTimeout,
		signals:        []os.Signal{syscall.SIGHUP},
		notify:         signal.Notify,
		stopNotify:     signal.Stop,
	}
}

// WithLogger sets where the Restarter logs upgrades, refusals, failures and
// drains. Default: [slog.Default] at the time [NewRestarter] is called. A nil
// logger keeps the default.
func WithLogger(l *slog.Logger) RestartOption {
	return func(c *restartConfig) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithPIDFile names a file that always holds the PID of the process that
// serves: a process writes it (atomically: a temporary file renamed over it)
// in [Restarter.Ready] before it tells the old process to go, the old process
// writes its own PID back if the new one failed, and a process that stops
// without handing over removes the file if it still names it. Point systemd's
// PIDFile= at it. A relative path is resolved against the working directory
// at [NewRestarter]. Default: no PID file.
func WithPIDFile(path string) RestartOption {
	return func(c *restartConfig) { c.pidFile = path }
}

// WithUpgradeTimeout sets how long a new process has to call
// [Restarter.Ready]; past it, the new process is killed, the upgrade fails
// with [ErrChildTimeout] and this process keeps serving. Default:
// [DefaultUpgradeTimeout] (one minute); d <= 0 keeps the default.
func WithUpgradeTimeout(d time.Duration) RestartOption {
	return func(c *restartConfig) {
		if d > 0 {
			c.upgradeTimeout = d
		}
	}
}

// WithDrainTimeout bounds the drain hooks (see [Restarter.OnDrain]): their
// context is cancelled when it has passed, and [Restarter.Drain] returns
// [ErrDrainTimeout] if they have not all returned by then. Default:
// [DefaultDrainTimeout] (30 seconds); d <= 0 keeps the default.
func WithDrainTimeout(d time.Duration) RestartOption {
	return func(c *restartConfig) {
		if d > 0 {
			c.drainTimeout = d
		}
	}
}

// WithLameDuck sets how long [Restarter.Drain] keeps serving, while the
// health handler answers "draining" and [Restarter.LameDuck] asks HTTP
// clients to close their connections, before it runs the drain hooks. On a
// shutdown (no new process) the listeners keep accepting for that time, so
// that a load balancer or Kubernetes sees the 503 and takes the process out
// of rotation before it stops accepting; after a handoff they have already
// stopped, and the time only lets keep-alive clients leave politely. It comes
// before, and is not counted in, the drain timeout. Default: 0 (no lame-duck
// period); d < 0 counts as 0.
func WithLameDuck(d time.Duration) RestartOption {
	return func(c *restartConfig) { c.lameDuck = max(d, 0) }
}

// WithSignals sets the signals that start an upgrade, as
// [Restarter.Upgrade] does. Default: SIGHUP. WithSignals() with no signal
// turns signal handling off (upgrades then start only from
// [Restarter.Upgrade] or [Restarter.UpgradeHandler]).
func WithSignals(sig ...os.Signal) RestartOption {
	return func(c *restartConfig) { c.signals = append([]os.Signal(nil), sig...) }
}
