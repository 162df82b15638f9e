package pluginrpc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// levelTrace is hclog's Trace level in slog terms.
const levelTrace = slog.LevelDebug - 4

// hclogAdapter is an hclog.Logger that logs to a *slog.Logger: go-plugin's
// own messages, and the lines of the plugin's stderr that go-plugin parses.
//
// Once stopping is set (the host is stopping the process on purpose),
// go-plugin's complaints about the stop are logged at Debug: it warns
// whenever the process exits before answering its quit request, or is
// killed, which is what a stop does. Its line about the process's exit is
// judged by the exit status (see exitLevel): an orderly stop is quiet, a
// crash is an error with its status, also when the host was stopping the
// process by then (it stops a process it has seen die).
type hclogAdapter struct {
	l        *slog.Logger
	name     string
	stopping *atomic.Bool
	abort    context.Context // if set, its end (Client.Close) is a stop too: it kills a process still starting
}

// isStopping reports whether the host is stopping the process on purpose.
func (a *hclogAdapter) isStopping() bool {
	return a.stopping.Load() || (a.abort != nil && a.abort.Err() != nil)
}

var _ hclog.Logger = (*hclogAdapter)(nil)

func newHCLog(l *slog.Logger, stopping *atomic.Bool) *hclogAdapter {
	return &hclogAdapter{l: l, stopping: stopping}
}

// stopMessages are go-plugin's messages about a stop.
var stopMessages = map[string]bool{
	"error closing client during Kill": true,
	"plugin failed to exit gracefully": true,
}

// exitMessage is go-plugin's line when the process has exited: at Info
// without an error (status 0), at Error with "error" set to the exit
// status ("exit status 3", "signal: killed") otherwise.
const exitMessage = "plugin process exited"

// exitLevel is the level of go-plugin's exitMessage: Debug for an exit
// of a process the host was stopping that is what a stop does (status 0,
// or SIGKILL: the host's kill past the grace, or of a process it saw die
// or hang, which the host logged itself); Error for any other failure (a
// non-zero status, a signal other than SIGKILL: the process failed by
// itself), whether or not the host was stopping it by then; otherwise
// go-plugin's level.
func exitLevel(level hclog.Level, stopping bool, args []any) hclog.Level {
	status := argString(args, "error")
	switch {
	case status == "":
		if stopping {
			return hclog.Debug
		}
		return level
	case stopping && status == "signal: killed":
		return hclog.Debug
	}
	return hclog.Error
}

// argString returns the value of key among hclog's key-value args, as a
// string, or "".
func argString(args []any, key string) string {
	for i := 0; i+1 < len(args); i += 2 {
		if k, ok := args[i].(string); ok && k == key {
			return fmt.Sprint(args[i+1])
		}
	}
	return ""
}

func slogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return levelTrace
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	}
	return slog.LevelInfo
}

func (a *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off {
		return
	}
	switch {
	case msg == exitMessage:
		level = exitLevel(level, a.isStopping(), args)
	case level >= hclog.Info && a.isStopping() && stopMessages[msg]:
		level = hclog.Debug
	}
	a.l.Log(context.Background(), slogLevel(level), msg, args...)
}

func (a *hclogAdapter) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }
func (a *hclogAdapter) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }
func (a *hclogAdapter) Info(msg string, args ...any)  { a.Log(hclog.Info, msg, args...) }
func (a *hclogAdapter) Warn(msg string, args ...any)  { a.Log(hclog.Warn, msg, args...) }
func (a *hclogAdapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }

func (a *hclogAdapter) enabled(l slog.Level) bool { return a.l.Enabled(context.Background(), l) }

func (a *hclogAdapter) IsTrace() bool { return a.enabled(levelTrace) }
func (a *hclogAdapter) IsDebug() bool { return a.enabled(slog.LevelDebug) }
func (a *hclogAdapter) IsInfo() bool  { return a.enabled(slog.LevelInfo) }
func (a *hclogAdapter) IsWarn() bool  { return a.enabled(slog.LevelWarn) }
func (a *hclogAdapter) IsError() bool { return a.enabled(slog.LevelError) }

func (a *hclogAdapter) ImpliedArgs() []any { return nil }

func (a *hclogAdapter) With(args ...any) hclog.Logger {
	return &hclogAdapter{l: a.l.With(args...), name: a.name, stopping: a.stopping, abort: a.abort}
}

func (a *hclogAdapter) Name() string { return a.name }

func (a *hclogAdapter) Named(name string) hclog.Logger {
	if a.name != "" {
		name = a.name + "." + name
	}
	return &hclogAdapter{l: a.l.With("logger", name), name: name, stopping: a.stopping, abort: a.abort}
}

func (a *hclogAdapter) ResetNamed(name string) hclog.Logger {
	return &hclogAdapter{l: a.l.With("logger", name), name: name, stopping: a.stopping, abort: a.abort}
}

// SetLevel does nothing: the slog handler decides.
func (a *hclogAdapter) SetLevel(hclog.Level) {}

func (a *hclogAdapter) GetLevel() hclog.Level {
	switch {
	case a.IsTrace():
		return hclog.Trace
	case a.IsDebug():
		return hclog.Debug
	case a.IsInfo():
		return hclog.Info
	case a.IsWarn():
		return hclog.Warn
	case a.IsError():
		return hclog.Error
	}
	return hclog.Off
}

func (a *hclogAdapter) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return slog.NewLogLogger(a.l.Handler(), slog.LevelInfo)
}

func (a *hclogAdapter) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	return a.StandardLogger(opts).Writer()
}

// lineWriter logs each line written to it: it receives the plugin's
// stdout or stderr from go-plugin. A line longer than maxLine is logged in
// pieces of maxLine bytes; the last line, if the output ends without a
// newline, when the process is stopped (flush).
type lineWriter struct {
	l      *slog.Logger
	stream string

	mu  sync.Mutex
	buf []byte
}

const maxLine = 64 << 10

func newLineWriter(l *slog.Logger, stream string) *lineWriter {
	return &lineWriter{l: l, stream: stream}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	rest := w.buf
	for {
		i := bytes.IndexByte(rest, '\n')
		for (i < 0 || i >= maxLine) && len(rest) >= maxLine {
			w.log(rest[:maxLine])
			rest = rest[maxLine:]
			i -= maxLine
		}
		if i < 0 {
			break
		}
		w.log(rest[:i])
		rest = rest[i+1:]
	}
	w.buf = append(w.buf[:0], rest...) // what is left of a line, at the front
	return len(p), nil
}

// flush logs what is left of a last line without its newline.
func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.log(w.buf)
		w.buf = w.buf[:0]
	}
}

func (w *lineWriter) log(line []byte) {
	w.l.Info(string(bytes.TrimRight(line, "\r")), "stream", w.stream)
}
