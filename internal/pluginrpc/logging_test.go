package pluginrpc

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
)

// go-plugin's line about a process's exit is quiet for what a stop does
// and an error, with the exit status, for a process that failed by
// itself, also when the host was stopping it by then.
func TestExitLevel(t *testing.T) {
	for _, tc := range []struct {
		stopping bool
		level    hclog.Level // go-plugin's
		status   string      // its "error": the exit status; "": none
		want     slog.Level
	}{
		{true, hclog.Info, "", slog.LevelDebug},                            // quit when asked
		{true, hclog.Error, "signal: killed", slog.LevelDebug},             // killed by the host past the grace
		{true, hclog.Error, "exit status 3", slog.LevelError},              // crashed; the host saw it die
		{true, hclog.Error, "signal: segmentation fault", slog.LevelError}, // not the host's signal
		{false, hclog.Error, "exit status 2", slog.LevelError},
		{false, hclog.Error, "signal: killed", slog.LevelError}, // killed by someone else
		{false, hclog.Info, "", slog.LevelInfo},
	} {
		t.Run(fmt.Sprintf("stopping=%v %q", tc.stopping, tc.status), func(t *testing.T) {
			rec := &recorder{}
			var stopping atomic.Bool
			stopping.Store(tc.stopping)
			a := newHCLog(slog.New(rec), &stopping)
			args := []any{"plugin", "/bin/p", "id", "42"}
			if tc.status != "" {
				args = append(args, "error", tc.status)
			}
			a.Log(tc.level, exitMessage, args...)
			require.True(t, rec.has(" "+tc.want.String()+" "+exitMessage), rec.dump())

			// Client.Close, which kills a process still starting, is a
			// stop too, whether or not stopping was set by then.
			abort, cancel := context.WithCancel(context.Background())
			cancel()
			rec = &recorder{}
			a = &hclogAdapter{l: slog.New(rec), stopping: &stopping, abort: abort}
			a.Log(tc.level, exitMessage, args...)
			want := exitLevel(tc.level, true, args)
			require.True(t, rec.has(" "+slogLevel(want).String()+" "+exitMessage), rec.dump())
			if tc.status != "" {
				require.True(t, rec.has(exitMessage, "error="+tc.status), "the status is kept")
			}
		})
	}
}

// A Client stopped on purpose (closed, or released by its last machine)
// logs nothing at Warn or above; one whose process crashes logs the exit
// status at Error.
func TestStopIsQuietCrashIsLoud(t *testing.T) {
	ctx := context.Background()
	loud := func(rec *recorder) []string {
		var out []string
		for _, r := range strings.Split(rec.dump(), "\n") {
			if strings.Contains(r, " WARN ") || strings.Contains(r, " ERROR ") {
				out = append(out, r)
			}
		}
		return out
	}
	for _, how := range []string{"close", "release"} {
		t.Run(how, func(t *testing.T) {
			c, rec := testClient(t, "echo")
			require.NoError(t, c.Start(ctx))
			pid := c.Stats().PID
			if how == "close" {
				require.NoError(t, c.Close())
			} else {
				c.Hold()()
			}
			requireGone(t, pid)
			require.NoError(t, c.Close()) // waits for go-plugin's goroutines
			require.True(t, rec.has("plugin stopped"), rec.dump())
			require.Empty(t, loud(rec))
		})
	}
	t.Run("crash", func(t *testing.T) {
		c, rec := testClient(t, "echo")
		require.NoError(t, c.Start(ctx))
		_, err := c.Call(ctx, "k", "crash", nil)
		require.ErrorIs(t, err, ErrPluginDied)
		require.NoError(t, c.Close())
		require.True(t, rec.has(" ERROR "+exitMessage, "error=exit status 3"), rec.dump())
	})
}

// lineRecorder is a slog.Handler that keeps each record's message.
type lineRecorder struct{ msgs []string }

func (r *lineRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *lineRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.msgs = append(r.msgs, rec.Message)
	return nil
}
func (r *lineRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *lineRecorder) WithGroup(string) slog.Handler      { return r }

// A plugin's output reaches the logger line by line; a line longer than
// maxLine in pieces of at most maxLine, however it was written; nothing is
// lost, a last line without its newline included (flush, at the stop).
func TestLineWriter(t *testing.T) {
	long := strings.Repeat("x", 2*maxLine+100)
	for _, tt := range []struct {
		name   string
		writes []string
		want   []string
	}{
		{"lines", []string{"a\nb", "c\n\n", "d"}, []string{"a", "bc", "", "d"}},
		{"a long line in one write", []string{long + "\nafter\n"},
			[]string{long[:maxLine], long[maxLine : 2*maxLine], long[2*maxLine:], "after"}},
		{"a long line without a newline", []string{long},
			[]string{long[:maxLine], long[maxLine : 2*maxLine], long[2*maxLine:]}},
		{"a long line in small writes", []string{long[:1000], long[1000:], "\r\n"},
			[]string{long[:maxLine], long[maxLine : 2*maxLine], long[2*maxLine:]}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := &lineRecorder{}
			w := newLineWriter(slog.New(rec), "stdout")
			for _, s := range tt.writes {
				n, err := w.Write([]byte(s))
				require.NoError(t, err)
				require.Equal(t, len(s), n)
			}
			w.flush()
			require.Equal(t, tt.want, rec.msgs)
			w.flush()
			require.Equal(t, tt.want, rec.msgs, "a flush of nothing logs nothing")
		})
	}
}
