package plugin

import (
	"log/slog"
	"time"

	"github.com/hotline-go/hotline/internal/pluginrpc"
)

// An Option configures how a plugin is run ([Load], [NewLoader]).
type Option func(*[]pluginrpc.Option)

func rpcOptions(opts []Option) []pluginrpc.Option {
	var out []pluginrpc.Option
	for _, o := range opts {
		o(&out)
	}
	return out
}

func opt(o pluginrpc.Option) Option { return func(l *[]pluginrpc.Option) { *l = append(*l, o) } }

// WithName sets the plugin's name in errors and logs. The default is the
// binary's file name.
func WithName(name string) Option { return opt(pluginrpc.WithName(name)) }

// WithLogger sets where the plugin's life (starts, deaths) and its stdout
// and stderr are logged. The default is slog.Default().
func WithLogger(l *slog.Logger) Option { return opt(pluginrpc.WithLogger(l)) }

// WithMachine makes [Load] refuse a plugin that serves another machine
// ([ErrWrongMachine]). The default accepts any.
func WithMachine(name string) Option { return opt(pluginrpc.WithMachine(name)) }

// WithCallTimeout sets how long the plugin has to handle one event; a
// plugin that takes longer is taken for hung, killed, restarted, and the
// event delivered again. The default is 5 seconds.
func WithCallTimeout(d time.Duration) Option { return opt(pluginrpc.WithCallTimeout(d)) }

// WithMaxRestarts sets how many times in a row the process may die before
// the plugin gives up ([ErrCrashLoop]). The default is 5.
func WithMaxRestarts(n int) Option { return opt(pluginrpc.WithMaxRestarts(n)) }

// WithRedeliveries sets how many times an event whose process died is
// delivered again. The default is 3.
func WithRedeliveries(n int) Option { return opt(pluginrpc.WithRedeliveries(n)) }

// WithRestartBackoff sets the wait before a restart: lo after the first
// death, doubling up to hi. The default is 10ms to 2s.
func WithRestartBackoff(lo, hi time.Duration) Option {
	return opt(pluginrpc.WithRestartBackoff(lo, hi))
}

// WithSocketDir sets the directory of the plugin's event socket. The
// default is [os.TempDir]; its path must be short (a Unix socket path
// fits in 108 bytes).
func WithSocketDir(dir string) Option { return opt(pluginrpc.WithSocketDir(dir)) }

// FileChecksum returns the SHA-256 of the file at path, for [Load].
func FileChecksum(path string) ([]byte, error) { return pluginrpc.FileChecksum(path) }

// ParseChecksum parses a SHA-256 written in hex, for [Load].
func ParseChecksum(s string) ([]byte, error) { return pluginrpc.ParseChecksum(s) }

// WithIdleStop keeps a plugin process whose last machine has stopped (or
// moved to another version) running for d before stopping it; a machine
// that starts on it meanwhile keeps it. A rollback soon after an upgrade
// then finds the old version's process running, instead of starting one
// while the machines are suspended. The default, 0, stops it at once.
func WithIdleStop(d time.Duration) Option { return opt(pluginrpc.WithIdleStop(d)) }

// WithConns sets how many connections the host opens to each plugin
// process for its events. A machine's events always take the same one, in
// order; machines busy at once spread over them, and the plugin serves
// each on its own goroutine. The default is GOMAXPROCS/2, at least 1 and
// at most 4: one connection on a 2-core machine, where more brought no
// throughput and cost the plugin CPU (doc/plugins.md).
func WithConns(n int) Option { return opt(pluginrpc.WithConns(n)) }
