package pluginrpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/internal/wire"
)

// script writes an executable shell script and returns its path and sum.
func script(t *testing.T, body string) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "not-a-plugin")
	require.NoError(t, os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755))
	sum, err := FileChecksum(path)
	require.NoError(t, err)
	return path, sum
}

func TestStartErrors(t *testing.T) {
	exe, sum := testExe(t)
	wrongSum := bytes.Clone(sum)
	wrongSum[0] ^= 0xff
	prints, printsSum := script(t, "echo hello")
	exits, exitsSum := script(t, "exit 0")

	tests := []struct {
		name string
		path string
		sum  []byte
		mode string
		opts []Option
		want []error
		text string
	}{
		{name: "missing binary", path: filepath.Join(t.TempDir(), "nothing"), sum: sum, mode: "echo",
			want: []error{ErrNotFound, fs.ErrNotExist}, text: "plugin binary not found"},
		{name: "wrong checksum", path: exe, sum: wrongSum, mode: "echo",
			want: []error{ErrChecksum}, text: "checksum mismatch: the binary's SHA-256 is"},
		{name: "checksum of a wrong size", path: exe, sum: sum[:10], mode: "echo",
			want: []error{ErrChecksum}, text: "want a SHA-256 checksum of 32 bytes, have 10"},
		{name: "not a plugin", path: prints, sum: printsSum, mode: "echo",
			want: []error{ErrHandshake}, text: "Unrecognized remote plugin message: hello"},
		{name: "exits at once", path: exits, sum: exitsSum, mode: "echo",
			want: []error{ErrHandshake}, text: "Failed to read any lines from plugin's stdout"},
		{name: "prints before serving", path: exe, sum: sum, mode: "print-before",
			want: []error{ErrHandshake}, text: "Unrecognized remote plugin message: hello from init"},
		{name: "protocol mismatch", path: exe, sum: sum, mode: "proto2",
			want: []error{ErrProtocol}, text: fmt.Sprintf("Plugin version: %d, Client versions: [%d]", wire.ProtocolVersion+1, wire.ProtocolVersion)},
		{name: "another machine", path: exe, sum: sum, mode: "echo", opts: []Option{WithMachine("phone")},
			want: []error{ErrWrongMachine}, text: `want "phone", the plugin serves "echo"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := testClientAt(t, tt.path, tt.sum, tt.mode, tt.opts...)
			err := c.Start(context.Background())
			for _, w := range tt.want {
				require.ErrorIs(t, err, w)
			}
			require.ErrorContains(t, err, "pluginrpc: plugin test-"+tt.mode+": ")
			require.ErrorContains(t, err, tt.text)
			require.Equal(t, Stats{FailedStarts: 1}, c.Stats())

			// A call reports the same, after the backoff.
			_, err = c.Call(context.Background(), "k", "echo", nil)
			require.ErrorIs(t, err, tt.want[0])
		})
	}

	t.Run("socket directory too long", func(t *testing.T) {
		long := filepath.Join(shortDir(t), strings.Repeat("d", 90))
		require.NoError(t, os.Mkdir(long, 0o700))
		c, _ := testClient(t, "echo", WithSocketDir(long))
		err := c.Start(context.Background())
		require.ErrorIs(t, err, ErrSocketDir)
		require.ErrorContains(t, err, "no room for a socket name")
		requireEmptyDir(t, long)
	})
}

func TestStartCancelled(t *testing.T) {
	c, _ := testClient(t, "echo")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, c.Start(ctx), context.Canceled)
	// The start goes on for the next caller.
	require.NoError(t, c.Start(context.Background()))
	require.Equal(t, 1, c.Stats().Starts)
}

func pidOf(t *testing.T, c *Client) int {
	t.Helper()
	out, err := c.Call(context.Background(), "pid", "pid", nil)
	require.NoError(t, err)
	pid, err := strconv.Atoi(string(out))
	require.NoError(t, err)
	return pid
}

func TestHandlerErrorAndPanic(t *testing.T) {
	c, _ := testClient(t, "echo")
	ctx := context.Background()
	pid := pidOf(t, c)

	_, err := c.Call(ctx, "k", "error", []byte("no such call"))
	var remote *RemoteError
	require.ErrorAs(t, err, &remote)
	require.Equal(t, &RemoteError{Plugin: "test-echo", Message: "no such call"}, remote)
	require.EqualError(t, err, "pluginrpc: plugin test-echo: no such call")

	_, err = c.Do(ctx, "k", "panic", []byte("boom"))
	var p *PanicError
	require.ErrorAs(t, err, &p)
	require.Equal(t, "boom", p.Value)
	require.Contains(t, p.Stack, "(*testHandler).handle")
	require.EqualError(t, err, "pluginrpc: plugin test-echo: handler panicked: boom")

	// The process survived, and served on.
	require.Equal(t, pid, pidOf(t, c))
	require.Equal(t, Stats{Starts: 1, PID: pid}, c.Stats())
}

func TestKilledMidCall(t *testing.T) {
	c, rec := testClient(t, "echo")
	ctx := context.Background()
	pid := pidOf(t, c)
	marker := filepath.Join(t.TempDir(), "marker")

	var wg sync.WaitGroup
	var doOut []byte
	var doErr, callErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		doOut, doErr = c.Do(ctx, "m1", "mark", []byte(marker))
	}()
	go func() {
		defer wg.Done()
		_, callErr = c.Call(ctx, "m2", "block", []byte("forever"))
	}()
	require.Eventually(t, func() bool {
		_, err := os.Stat(marker)
		return err == nil
	}, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	wg.Wait()

	// Do delivered the call again to a new process, and it succeeded.
	require.NoError(t, doErr)
	require.Equal(t, "marked", string(doOut))
	// Call, once, reports the death and its cause.
	require.ErrorIs(t, callErr, ErrPluginDied)
	require.ErrorContains(t, callErr, "pluginrpc: plugin test-echo: plugin died: reading: ")

	requireGone(t, pid)
	st := c.Stats()
	require.Equal(t, 2, st.Starts)
	require.Equal(t, 1, st.Deaths)
	require.NotEqual(t, pid, st.PID)
	require.Equal(t, st.PID, pidOf(t, c))
	require.True(t, rec.has("WARN plugin died", "pid="+strconv.Itoa(pid)))
}

func TestHang(t *testing.T) {
	c, _ := testClient(t, "echo", WithCallTimeout(300*time.Millisecond), WithRedeliveries(1),
		WithRestartBackoff(time.Millisecond, 10*time.Millisecond))
	ctx := context.Background()
	pid := pidOf(t, c)

	start := time.Now()
	_, err := c.Call(ctx, "k", "hang", nil)
	require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
	require.ErrorIs(t, err, ErrPluginDied)
	require.ErrorIs(t, err, ErrTimeout)
	require.EqualError(t, err, "pluginrpc: plugin test-echo: plugin died: plugin did not answer in time")
	requireGone(t, pid)

	// The hung process was replaced; calls go on.
	pid2 := pidOf(t, c)
	require.NotEqual(t, pid, pid2)

	// Do delivers it again, and gives up.
	_, err = c.Do(ctx, "k", "hang", nil)
	require.ErrorIs(t, err, ErrCrashLoop)
	require.ErrorIs(t, err, ErrTimeout)
	require.NotErrorIs(t, err, ErrPluginDied)
	require.EqualError(t, err, "pluginrpc: plugin test-echo: plugin keeps crashing: "+
		"the call died in each of 2 deliveries, the last time: pluginrpc: plugin did not answer in time")
	require.Equal(t, 3, c.Stats().Deaths)
}

func TestCallerDeadline(t *testing.T) {
	c, _ := testClient(t, "echo")
	pid := pidOf(t, c)

	// A caller's deadline abandons the call; the plugin is not at fault.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Call(ctx, "k", "hold", []byte("gate1"))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotErrorIs(t, err, ErrPluginDied)
	_, err = c.Call(context.Background(), "k2", "release", []byte("gate1"))
	require.NoError(t, err)

	// So is a cancelled caller waiting behind another one.
	ctx2, cancel2 := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx2, "k2", "block", []byte("gate"))
		done <- err
	}()
	out, err := c.Call(context.Background(), "k3", "echo", []byte("meanwhile"))
	require.NoError(t, err)
	require.Equal(t, "meanwhile", string(out))
	cancel2()
	require.ErrorIs(t, <-done, context.Canceled)

	require.Equal(t, pid, pidOf(t, c))
	require.Equal(t, 0, c.Stats().Deaths)
}

func TestMalformedReply(t *testing.T) {
	c, _ := testClient(t, "echo")
	pid := pidOf(t, c)
	_, err := c.Call(context.Background(), "k", "malformed", nil)
	require.ErrorIs(t, err, ErrPluginDied)
	require.ErrorIs(t, err, ErrMalformed)
	require.ErrorContains(t, err, "pluginrpc: plugin test-echo: plugin died: malformed message from plugin: wire: malformed message: Response: header")
	requireGone(t, pid)
	require.NotEqual(t, pid, pidOf(t, c))
}

func TestCrashLoop(t *testing.T) {
	c, rec := testClient(t, "echo", WithRedeliveries(2), WithMaxRestarts(4),
		WithRestartBackoff(time.Millisecond, 5*time.Millisecond))
	ctx := context.Background()

	_, err := c.Do(ctx, "k", "crash", nil)
	require.ErrorIs(t, err, ErrCrashLoop)
	require.ErrorContains(t, err, "plugin test-echo: plugin keeps crashing: the call died in each of 3 deliveries")
	require.Equal(t, 3, c.Stats().Deaths)

	// Two more deaths in a row, and the Client gives up altogether.
	_, err = c.Call(ctx, "k", "crash", nil)
	require.ErrorIs(t, err, ErrPluginDied)
	_, err = c.Call(ctx, "k", "crash", nil)
	require.ErrorIs(t, err, ErrPluginDied)
	_, err = c.Call(ctx, "k", "echo", nil)
	require.ErrorIs(t, err, ErrCrashLoop)
	require.ErrorContains(t, err, "plugin test-echo: plugin keeps crashing: it died or failed to start 5 times in a row")
	require.Equal(t, Stats{Starts: 5, Deaths: 5}, c.Stats())
	require.True(t, rec.has("ERROR plugin keeps crashing: giving up"))
}

func TestAnswerResetsFailures(t *testing.T) {
	c, _ := testClient(t, "echo", WithMaxRestarts(1), WithRestartBackoff(time.Millisecond, time.Millisecond))
	ctx := context.Background()
	for range 3 {
		_, err := c.Call(ctx, "k", "crash", nil)
		require.ErrorIs(t, err, ErrPluginDied)
		_, err = c.Call(ctx, "k", "echo", nil) // answered: the count starts again
		require.NoError(t, err)
	}
	require.Equal(t, 3, c.Stats().Deaths)
}

func TestTooLarge(t *testing.T) {
	c, _ := testClient(t, "echo")
	ctx := context.Background()
	pid := pidOf(t, c)
	_, err := c.Call(ctx, "k", "echo", make([]byte, 16<<20))
	require.ErrorIs(t, err, ErrTooLarge)
	_, err = c.Call(ctx, "k", "big", nil)
	var remote *RemoteError
	require.ErrorAs(t, err, &remote)
	require.Contains(t, remote.Message, "response too large")
	require.Equal(t, pid, pidOf(t, c))
}

func TestCloseWithCallsInFlight(t *testing.T) {
	c, _ := testClient(t, "echo")
	pid := pidOf(t, c)
	done := make(chan error, 1)
	go func() {
		_, err := c.Do(context.Background(), "k", "block", []byte("forever"))
		done <- err
	}()
	require.Eventually(t, func() bool { return inFlightCalls(c) == 1 }, // the call is in flight
		10*time.Second, time.Millisecond)
	require.NoError(t, c.Close())
	err := <-done
	require.ErrorIs(t, err, ErrClosed)
	require.NotErrorIs(t, err, ErrPluginDied)
	requireGone(t, pid)
	require.NoError(t, c.Close())
}

func TestOutputReachesLogger(t *testing.T) {
	c, rec := testClient(t, "echo")
	_, err := c.Call(context.Background(), "k", "print", []byte("hello from the plugin"))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return rec.has("INFO hello from the plugin", "plugin=test-echo", "stream=stdout") &&
			rec.has("INFO hello from the plugin", "plugin=test-echo", "stream=stderr")
	}, 10*time.Second, 5*time.Millisecond, rec.dump())
}

func TestOrphanExits(t *testing.T) {
	// A plugin whose host is gone (its event socket closed, and no quit
	// from go-plugin) exits by itself.
	c, _ := testClient(t, "echo")
	pid := pidOf(t, c)
	c.mu.Lock()
	p := c.cur
	c.mu.Unlock()
	for _, pc := range p.conns {
		require.NoError(t, pc.nc.Close()) // as the kernel would when the host dies
	}
	requireGone(t, pid)
	_, err := c.Call(context.Background(), "k", "echo", nil)
	require.True(t, err == nil || errors.Is(err, ErrPluginDied), "%v", err)
}

// A call in flight when the plugin dies is woken before the Client learns
// of the death: its next delivery must not go to the dead process (whose
// conn fails it at once), or every delivery is spent in an instant and
// the call fails with ErrCrashLoop. Here the conn of the killed process
// never tells the Client, the latest it could.
func TestRedeliveryNotToTheDeadProcess(t *testing.T) {
	c, rec := testClient(t, "echo")
	ctx := context.Background()
	pid := pidOf(t, c)
	marker := filepath.Join(t.TempDir(), "marker")
	var dies atomic.Int32
	dieHook = func() bool { return dies.Add(1) > 1 } // the first death is not told
	t.Cleanup(func() { dieHook = nil })

	done := make(chan struct{})
	var out []byte
	var err error
	go func() {
		defer close(done)
		out, err = c.Do(ctx, "m1", "mark", []byte(marker))
	}()
	require.Eventually(t, func() bool {
		_, err := os.Stat(marker)
		return err == nil
	}, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	<-done

	require.NoError(t, err, "delivered again to a new process")
	require.Equal(t, "marked", string(out))
	require.Equal(t, int32(1), dies.Load())
	requireGone(t, pid)
	st := c.Stats()
	require.Equal(t, 2, st.Starts)
	require.Equal(t, 1, st.Deaths, "counted by Do")
	require.True(t, rec.has("WARN plugin died", "pid="+strconv.Itoa(pid)))
}

// TestPoolConnBrokenMidCall: one connection of the pool breaks while calls
// are in flight on it and on another. The process is taken for dead: every
// call in flight fails as a death (on both connections), it is killed and
// restarted, and Do delivers its call again: nothing is lost.
func TestPoolConnBrokenMidCall(t *testing.T) {
	c, rec := testClient(t, "echo", WithConns(2))
	ctx := context.Background()
	pid := pidOf(t, c)
	keys := keysOnConns(t, c, 2)
	marker := filepath.Join(t.TempDir(), "marker")

	var wg sync.WaitGroup
	var doOut []byte
	var doErr, callErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		doOut, doErr = c.Do(ctx, keys[0], "mark", []byte(marker))
	}()
	go func() {
		defer wg.Done()
		_, callErr = c.Call(ctx, keys[1], "block", []byte("forever"))
	}()
	require.Eventually(t, func() bool {
		_, err := os.Stat(marker)
		return err == nil && inFlightCalls(c) == 2
	}, 10*time.Second, 5*time.Millisecond)
	c.mu.Lock()
	broken := c.cur.connFor(keys[1])
	c.mu.Unlock()
	require.NoError(t, broken.nc.Close()) // the connection of the blocked call

	wg.Wait()
	require.NoError(t, doErr, "delivered again to a new process")
	require.Equal(t, "marked", string(doOut))
	require.ErrorIs(t, callErr, ErrPluginDied)
	// Counted in flight before it is written, the blocked call's request may
	// meet the closed socket as it is written, or its answer as it is read.
	require.Regexp(t, "plugin died: (reading|writing): ", callErr.Error())
	requireGone(t, pid)
	st := c.Stats()
	require.Equal(t, 2, st.Starts)
	require.Equal(t, 1, st.Deaths)
	require.Equal(t, st.PID, pidOf(t, c))
	require.True(t, rec.has("WARN plugin died", "pid="+strconv.Itoa(pid)))
}

// Close while a process is starting (here, one that never completes the
// handshake) stops it at once: it does not wait for the start timeout.
func TestCloseDuringStart(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "pid")
	path, sum := script(t, `echo $$ > "$HOTLINE_TEST_MARK"; exec sleep 60`)
	c, rec := testClientAt(t, path, sum, "echo", WithStartTimeout(10*time.Second), withEnv("HOTLINE_TEST_MARK="+marker))
	started := make(chan error, 1)
	go func() { started <- c.Start(context.Background()) }()
	var pid int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(marker)
		if err != nil || !bytes.HasSuffix(b, []byte("\n")) {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	}, 10*time.Second, 5*time.Millisecond)

	start := time.Now()
	require.NoError(t, c.Close())
	require.Less(t, time.Since(start), 5*time.Second, "Close waited for the start timeout")
	require.ErrorIs(t, <-started, ErrClosed)
	requireGone(t, pid)
	require.False(t, rec.has("ERROR"), "a stop is not a crash")
}

// doInOrder runs, for each of n machines at once, Do "stall-in" (which
// stalls in the process pid) then Do "incr", and checks that each machine's
// first call was counted once, on the process that replaced pid, and its
// second after it: every call in flight at pid's end was delivered again
// exactly once, in each machine's order. ready is called once every
// machine's first call is in flight.
func doInOrder(t *testing.T, c *Client, n, pid int, ready func()) {
	t.Helper()
	ctx := context.Background()
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for m := range n {
		wg.Go(func() {
			key := fmt.Sprintf("machine-%d", m)
			for i, method := range []string{"stall-in", "incr"} {
				out, err := c.Do(ctx, key, method, []byte(strconv.Itoa(pid)))
				if err != nil {
					errs <- fmt.Errorf("%s: %s: %w", key, method, err)
					return
				}
				if string(out) != strconv.Itoa(i+1) {
					errs <- fmt.Errorf("%s: %s counted %s, want %d", key, method, out, i+1)
					return
				}
			}
		})
	}
	require.Eventually(t, func() bool { return inFlightCalls(c) == n }, 10*time.Second, time.Millisecond)
	ready()
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// SIGKILL with many machines' calls in flight on one connection: each is
// delivered again exactly once to the new process, in each machine's
// order, and the process is counted dead once.
func TestKilledWithManyCallsInFlight(t *testing.T) {
	c, rec := testClient(t, "echo", WithConns(1), WithRedeliveries(1))
	pid := pidOf(t, c)
	doInOrder(t, c, 24, pid, func() { require.NoError(t, syscall.Kill(pid, syscall.SIGKILL)) })
	requireGone(t, pid)
	st := c.Stats()
	require.Equal(t, 2, st.Starts)
	require.Equal(t, 1, st.Deaths)
	require.True(t, rec.has("WARN plugin died", "pid="+strconv.Itoa(pid)))
}

// A plugin that answered calls and then stops answering altogether
// (SIGSTOP: nothing reads, nothing writes) with calls of many machines in
// flight on two connections: the hang is found out by the call timeout,
// the process killed, and every call delivered again exactly once.
func TestStoppedWithManyCallsInFlight(t *testing.T) {
	c, _ := testClient(t, "echo", WithConns(2), WithRedeliveries(1), WithCallTimeout(500*time.Millisecond))
	pid := pidOf(t, c)
	out, err := c.Call(context.Background(), "answered", "incr", nil)
	require.NoError(t, err)
	require.Equal(t, "1", string(out))
	doInOrder(t, c, 16, pid, func() { require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP)) })
	requireGone(t, pid)
	st := c.Stats()
	require.Equal(t, 2, st.Starts)
	require.Equal(t, 1, st.Deaths)
	out, err = c.Call(context.Background(), "answered", "incr", nil)
	require.NoError(t, err)
	require.Equal(t, "1", string(out), "the new process keeps nothing of the old")
}

// The plugin's binary is replaced on disk after it was loaded. The running
// process serves on; once it dies, the restart checks the checksum again
// and refuses to run the new binary (ErrChecksum naming both sums), and
// after WithMaxRestarts the Client gives up with ErrCrashLoop wrapping it.
func TestBinaryReplacedOnDisk(t *testing.T) {
	exe, sum := testExe(t)
	dir := t.TempDir()
	path := copyExe(t, exe, dir)
	c, _ := testClientAt(t, path, sum, "echo", WithMaxRestarts(2), WithRestartBackoff(time.Millisecond, time.Millisecond))
	pid := pidOf(t, c)

	ran := filepath.Join(dir, "ran")
	other, otherSum := script(t, ": > "+ran)
	require.NoError(t, os.Rename(other, path)) // as a deployment would
	require.Equal(t, pid, pidOf(t, c), "the running process serves on")

	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	_, err := c.Do(context.Background(), "k", "echo", nil)
	require.ErrorIs(t, err, ErrChecksum)
	require.ErrorContains(t, err, fmt.Sprintf("plugin test-echo: checksum mismatch: the binary's SHA-256 is %x, want %x", otherSum, sum))
	_, err = c.Call(context.Background(), "k", "echo", nil)
	require.ErrorIs(t, err, ErrChecksum)
	_, err = c.Call(context.Background(), "k", "echo", nil)
	require.ErrorIs(t, err, ErrCrashLoop)
	require.ErrorIs(t, err, ErrChecksum)
	require.ErrorContains(t, err, "it died or failed to start 3 times in a row, the last time: pluginrpc: checksum mismatch")
	require.NoFileExists(t, ran, "the new binary was never run")
	require.Equal(t, Stats{Starts: 1, Deaths: 1, FailedStarts: 2}, c.Stats())
}

// A plugin that prints a lot: the call is not held up, and every line
// reaches the host's logger.
func TestOutputFlood(t *testing.T) {
	c, rec := testClient(t, "echo")
	const n = 20000
	_, err := c.Call(context.Background(), "k", "print-n", []byte(strconv.Itoa(n)))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return rec.has("INFO done", "stream=stdout") }, 10*time.Second, 5*time.Millisecond)
	lines := 0
	for _, r := range strings.Split(rec.dump(), "\n") {
		if strings.Contains(r, " of the flood ") && strings.Contains(r, "stream=stdout") {
			lines++
		}
	}
	require.Equal(t, n, lines)
}

// A last line without its newline is logged when the process stops.
func TestOutputLastLineWithoutNewline(t *testing.T) {
	c, rec := testClient(t, "echo")
	_, err := c.Call(context.Background(), "k", "partial", []byte("the last words"))
	require.NoError(t, err)
	c.mu.Lock()
	p := c.cur
	c.mu.Unlock()
	require.Eventually(t, func() bool {
		p.stdout.mu.Lock()
		defer p.stdout.mu.Unlock()
		return len(p.stdout.buf) > 0
	}, 10*time.Second, time.Millisecond, "the bytes reached the host")
	require.False(t, rec.has("the last words"))
	require.NoError(t, c.Close())
	require.True(t, rec.has("INFO the last words", "stream=stdout"))
}

// The binary is replaced on disk while a process is being started, after
// the host opened it: what is checked and what runs is the file the host
// opened, never the one that took its name meanwhile (go-plugin checks the
// path's checksum, then executes the path: a file renamed over it between
// the two would run unchecked).
func TestBinaryReplacedWhileStarting(t *testing.T) {
	exe, sum := testExe(t)
	dir := t.TempDir()
	path := copyExe(t, exe, dir)
	ran := filepath.Join(dir, "ran")
	other, _ := script(t, ": > "+ran)
	startHook = func() { require.NoError(t, os.Rename(other, path)) }
	t.Cleanup(func() { startHook = nil })

	c, _ := testClientAt(t, path, sum, "echo")
	require.NoError(t, c.Start(context.Background()), "the binary opened and checked is the one that runs")
	pid := pidOf(t, c)
	require.Equal(t, pid, c.Stats().PID)
	require.NoFileExists(t, ran, "the file renamed over it never ran")
}

// A Do woken by the death of its call's conn retires the process and
// kills it (Client.onDeath), which may get to the process's other conns
// before the death does (proc.connDied fails them after waking the calls
// of the dead one). A call in flight on another conn must then fail as a
// death, and be delivered again, not with ErrClosed, which Do gives up on
// (a machine would stop with "closed": seen in the phone switch's soak).
// Here the Client is told of a death by Do's path alone, as then.
func TestKillAfterADeathFailsTheOtherConnsAsDied(t *testing.T) {
	c, _ := testClient(t, "echo", WithConns(2))
	ctx := context.Background()
	pid := pidOf(t, c)
	c.mu.Lock()
	p := c.cur
	c.mu.Unlock()

	done := make(chan error, 1)
	go func() {
		out, err := c.Do(ctx, "k", "stall-in", []byte(strconv.Itoa(pid)))
		if err == nil && string(out) != "1" {
			err = fmt.Errorf("counted %s on the new process", out)
		}
		done <- err
	}()
	require.Eventually(t, func() bool { return inFlightCalls(c) == 1 }, 10*time.Second, time.Millisecond)
	c.onDeath(p, &diedError{cause: errors.New("a death on another conn")})
	require.NoError(t, <-done, "delivered again to a new process")
	requireGone(t, pid)
	require.Equal(t, 2, c.Stats().Starts)
}

// The process is named after the binary (its comm, as ps shows it), not
// after the descriptor the host starts it through.
func TestProcessNamedAfterTheBinary(t *testing.T) {
	c, _ := testClient(t, "echo")
	pid := pidOf(t, c)
	exe, _ := testExe(t)
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	require.NoError(t, err)
	want := filepath.Base(exe)
	require.Equal(t, want[:min(len(want), 15)], strings.TrimSpace(string(comm)))
}

// copyExe copies the binary exe to dir/plugin, which a test may then
// replace, and returns that path.
func copyExe(t *testing.T, exe, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "plugin")
	b, err := os.ReadFile(exe)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o755))
	return path
}
