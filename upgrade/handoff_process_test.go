//go:build linux

package upgrade_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/upgrade/internal/testserver"
)

// These tests run the sequence server of handoff_server_test.go as real
// processes and replace it with SIGHUP while clients stream numbered lines
// over long-lived connections. Waiting polls real processes, so it sleeps.

type seqHarness struct {
	t    testing.TB
	dir  string
	addr string
	log  string

	mu   sync.Mutex
	pids map[int]bool
}

func startSeqServer(t testing.TB) *seqHarness { return startSeqServerWith(t, nil) }

// startSeqServerWith starts the sequence server with settings (file name to
// content, see handoff_server_test.go) written before it starts.
func startSeqServerWith(t testing.TB, settings map[string]string) *seqHarness {
	t.Helper()
	dir := t.TempDir()
	for name, value := range settings {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(value), 0o644))
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	h := &seqHarness{t: t, dir: dir, addr: freeAddr(t, "tcp"), log: filepath.Join(dir, "server.log"), pids: map[int]bool{}}
	logf, err := os.Create(h.log)
	require.NoError(t, err)
	defer func() { require.NoError(t, logf.Close()) }()
	cmd := exec.Command(exe)
	race := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	cmd.Env = append(os.Environ(), "HOTLINE_HANDOFF_TEST="+dir, "HOTLINE_HANDOFF_TEST_ADDR="+h.addr, "GORACE="+race)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	reaped := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(reaped)
	}()
	t.Cleanup(func() {
		if pid := h.pid(); pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
		h.mu.Lock()
		pids := h.pids
		h.mu.Unlock()
		deadline := time.Now().Add(waitLimit)
		for pid := range pids {
			for !exited(pid) && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if !exited(pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		<-reaped
		if t.Failed() {
			b, _ := os.ReadFile(h.log)
			t.Logf("server log:\n%s", b)
		}
	})
	waitFor(t, "first server", func() bool { return h.pid() == cmd.Process.Pid })
	h.track(cmd.Process.Pid)
	return h
}

func (h *seqHarness) track(pid int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pids[pid] = true
}

func (h *seqHarness) pid() int { return testserver.ReadPID(filepath.Join(h.dir, "server.pid")) }

func (h *seqHarness) set(name, value string) {
	h.t.Helper()
	path := filepath.Join(h.dir, name)
	if value == "" {
		require.NoError(h.t, os.Remove(path))
		return
	}
	require.NoError(h.t, os.WriteFile(path, []byte(value), 0o644))
}

// hup replaces the server and waits until the new one serves and the old
// one has exited.
func (h *seqHarness) hup() int {
	h.t.Helper()
	old := h.pid()
	require.NoError(h.t, syscall.Kill(old, syscall.SIGHUP))
	return h.replaced(old)
}

// replaced waits until a new server replaced old (sent SIGHUP) and serves,
// and old has exited.
func (h *seqHarness) replaced(old int) int {
	h.t.Helper()
	waitFor(h.t, "new server", func() bool { p := h.pid(); return p != old && p > 0 })
	waitFor(h.t, "old server to exit", func() bool { return exited(old) })
	pid := h.pid()
	h.track(pid)
	// The next upgrade is refused until the new process has seen the old
	// one exit.
	waitFor(h.t, "new server to see the old one exit", func() bool {
		return h.count(fmt.Sprintf("previous process exited\" pid=%d", pid)) > 0
	})
	return pid
}

// hupFails sends SIGHUP to a server whose next generation fails, and waits
// until the server has logged the failure.
func (h *seqHarness) hupFails(want string) {
	h.t.Helper()
	old := h.pid()
	before, reasons := h.count(resumed), h.count(want)
	require.NoError(h.t, syscall.Kill(old, syscall.SIGHUP))
	waitFor(h.t, "failed upgrade", func() bool { return h.count(resumed) > before })
	require.Greater(h.t, h.count(want), reasons, "the reason is logged")
	require.Equal(h.t, old, h.pid(), "the old server still serves")
}

const resumed = "machines and connections resumed here"

func (h *seqHarness) count(s string) int {
	b, err := os.ReadFile(h.log)
	require.NoError(h.t, err)
	return strings.Count(string(b), s)
}

// ask sends one line on a new connection and returns the answer.
func (h *seqHarness) ask(line string) string {
	h.t.Helper()
	c, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
	require.NoError(h.t, err)
	defer func() { require.NoError(h.t, c.Close()) }()
	require.NoError(h.t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = fmt.Fprintf(c, "%s\n", line)
	require.NoError(h.t, err)
	reply, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(h.t, err)
	return strings.TrimSuffix(reply, "\n")
}

// A streamer sends numbered lines on one connection, up to window ahead of
// the replies, and checks that reply i is line i numbered i.
type streamer struct {
	c      net.Conn
	window chan struct{}
	stop   chan struct{}
	done   chan struct{} // the reader has returned
	wdone  chan struct{} // the writer has returned

	mu       sync.Mutex
	sent     int
	got      int
	versions map[string]int
	pids     map[string]bool
	err      error
}

func stream(t *testing.T, addr string) *streamer {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	s := &streamer{c: c, window: make(chan struct{}, 8), stop: make(chan struct{}), done: make(chan struct{}), wdone: make(chan struct{}),
		versions: map[string]int{}, pids: map[string]bool{}}
	go s.write()
	go s.read()
	return s
}

func (s *streamer) write() {
	defer close(s.wdone)
	w := bufio.NewWriter(s.c)
	for i := 1; ; i++ {
		select {
		case <-s.stop:
			return
		case s.window <- struct{}{}:
		}
		// Two writes, so that a line is sometimes cut across reads.
		half := strconv.Itoa(i)
		_, _ = w.WriteString(half[:len(half)/2])
		_ = w.Flush()
		_, err := w.WriteString(half[len(half)/2:] + "\n")
		if err == nil {
			err = w.Flush()
		}
		if err != nil {
			s.fail(fmt.Errorf("write %d: %w", i, err))
			return
		}
		s.mu.Lock()
		s.sent = i
		s.mu.Unlock()
		time.Sleep(200 * time.Microsecond)
	}
}

func (s *streamer) read() {
	defer close(s.done)
	r := bufio.NewReader(s.c)
	for i := 1; ; i++ {
		line, err := r.ReadString('\n')
		if err != nil {
			s.mu.Lock()
			if s.got < s.sent || s.err == nil && !s.closing() {
				s.err = fmt.Errorf("connection dropped after %d replies: %w", s.got, err)
			}
			s.mu.Unlock()
			return
		}
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != strconv.Itoa(i) || f[3] != strconv.Itoa(i) {
			s.fail(fmt.Errorf("reply %d: %q", i, line))
			return
		}
		s.mu.Lock()
		s.got = i
		s.versions[f[2]]++
		s.pids[f[1]] = true
		s.mu.Unlock()
		<-s.window
	}
}

func (s *streamer) closing() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

func (s *streamer) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

func (s *streamer) progress() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got
}

// finish stops sending, waits for every reply, and closes.
func (s *streamer) finish(t *testing.T) (sent int, versions map[string]int, pids int) {
	t.Helper()
	close(s.stop)
	<-s.wdone
	waitFor(t, "last replies", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.got == s.sent || s.err != nil
	})
	require.NoError(t, s.c.Close())
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	require.NoError(t, s.err)
	return s.sent, s.versions, len(s.pids)
}

func streamers(t *testing.T, addr string, n int) []*streamer {
	ss := make([]*streamer, n)
	for i := range ss {
		ss[i] = stream(t, addr)
	}
	return ss
}

// waitProgress waits until every streamer has had more replies.
func waitProgress(t *testing.T, ss []*streamer) {
	t.Helper()
	base := make([]int, len(ss))
	for i, s := range ss {
		base[i] = s.progress()
	}
	for i, s := range ss {
		waitFor(t, "progress", func() bool { return s.progress() > base[i]+5 })
	}
}

type stats struct{ pid, fds, goroutines, machines int }

// floorStats returns st with the floor of its descriptors and goroutines
// over half a second of samples: what stays once transient ones (a
// connection on its way out, a goroutine of the handoff's last steps) are
// gone, however loaded the machine.
func (h *seqHarness) floorStats(st stats) stats {
	h.t.Helper()
	for range 25 {
		time.Sleep(20 * time.Millisecond)
		again := h.stats()
		st.goroutines = min(st.goroutines, again.goroutines)
		st.fds = min(st.fds, again.fds)
	}
	return st
}

// requireSameStats fails unless the process of handoff n holds as many
// descriptors and goroutines (other than the actor System's workers, whose
// number follows the load) as the first: what it holds is logged if not.
func (h *seqHarness) requireSameStats(first, st stats, n int) {
	t := h.t
	t.Helper()
	if first.fds != st.fds || first.goroutines != st.goroutines {
		t.Logf("descriptors: %s", h.ask("fds"))
		t.Logf("goroutines:\n%s", strings.ReplaceAll(h.ask("gdump"), "|", "\n"))
	}
	require.Equal(t, first.fds, st.fds, "handoff %d: descriptors", n)
	require.Equal(t, first.goroutines, st.goroutines, "handoff %d: goroutines", n)
}

func (h *seqHarness) stats() stats {
	h.t.Helper()
	f := strings.Fields(h.ask("stats"))
	require.Len(h.t, f, 4)
	var s stats
	for i, p := range []*int{&s.pid, &s.fds, &s.goroutines, &s.machines} {
		n, err := strconv.Atoi(f[i])
		require.NoError(h.t, err)
		*p = n
	}
	return s
}

// Long-lived connections stream through their machines across ten SIGHUPs
// in a row: no line is lost, duplicated or reordered, no connection drops,
// and the new processes' descriptors and goroutines stay flat.
func TestHandoffStreamsAcrossRestarts(t *testing.T) {
	h := startSeqServer(t)
	ss := streamers(t, h.addr, 16)
	waitProgress(t, ss)
	var first stats
	for i := range 10 {
		// New connections, one after the other, across the handoff.
		churn := startChurn(h.addr)
		pid := h.hup()
		waitProgress(t, ss)
		n, err := churn()
		require.NoError(t, err)
		require.Positive(t, n)

		// One machine per connection, and the stats one, once the last
		// churn connection's end has reached the server.
		var st stats
		waitFor(t, "churn to settle", func() bool { st = h.stats(); return st.machines == len(ss)+1 })
		require.Equal(t, pid, st.pid)
		st = h.floorStats(st)
		if i == 0 {
			first = st
			continue
		}
		h.requireSameStats(first, st, i+1)
	}
	for _, s := range ss {
		sent, _, pids := s.finish(t)
		require.Positive(t, sent)
		require.Equal(t, 11, pids, "every generation served the connection")
	}
}

// startChurn opens new connections one after the other, each asking one
// line, until the returned function stops it and reports how many were
// served and the first failure: a connection that arrives during a handoff
// waits for the new process and is served.
func startChurn(addr string) func() (int, error) {
	stop, done := make(chan struct{}), make(chan struct{})
	var n int
	var err error
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			var reply string
			reply, err = askOnce(addr, "x")
			if err != nil {
				return
			}
			if f := strings.Fields(reply); len(f) != 4 || f[0] != "1" || f[3] != "x" {
				err = fmt.Errorf("churn: reply %q", reply)
				return
			}
			n++
			time.Sleep(time.Millisecond)
		}
	}()
	return func() (int, error) {
		close(stop)
		<-done
		return n, err
	}
}

func askOnce(addr, line string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return "", err
	}
	if _, err := fmt.Fprintf(c, "%s\n", line); err != nil {
		return "", err
	}
	reply, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSuffix(reply, "\n"), err
}

// A machine restored from the previous process is reached from a
// connection the new process accepted.
func TestHandoffRestoredMachineReachable(t *testing.T) {
	h := startSeqServer(t)
	c, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
	require.NoError(t, err)
	defer func() { require.NoError(t, c.Close()) }()
	r := bufio.NewReader(c)
	for i := 1; i <= 3; i++ {
		_, err := fmt.Fprintf(c, "%d\n", i)
		require.NoError(t, err)
		_, err = r.ReadString('\n')
		require.NoError(t, err)
	}
	key := fmt.Sprintf("c%d-1", h.pid())
	pid := h.hup()
	f := strings.Fields(h.ask("@" + key + " probe"))
	require.Equal(t, []string{"4", strconv.Itoa(pid), "v1", "probe"}, f)
	_, err = fmt.Fprintf(c, "again\n")
	require.NoError(t, err)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("5 %d v1 again\n", pid), line)
}

// A new binary with a newer version of the machine restores it through
// UPGRADE, and numbering goes on.
func TestHandoffUpgradesVersion(t *testing.T) {
	h := startSeqServer(t)
	ss := streamers(t, h.addr, 4)
	waitProgress(t, ss)
	h.set("version", "v2")
	h.hup()
	waitProgress(t, ss)
	h.hup() // v2 to v2: loaded as it is
	waitProgress(t, ss)
	for _, s := range ss {
		_, versions, _ := s.finish(t)
		require.Positive(t, versions["v1"])
		require.Positive(t, versions["v2"])
	}
}

// A new process that fails before it is ready leaves the old one serving
// every machine and connection; a good one then takes everything over.
func TestHandoffFailures(t *testing.T) {
	h := startSeqServer(t)
	ss := streamers(t, h.addr, 8)
	waitProgress(t, ss)
	for _, tc := range []struct{ fault, log string }{
		{"exit:received", "new process failed"},
		{"panic:restored", "new process failed"},
		{"hang:received", "not ready in time"},
		{"format", "refused the state"},
		{"nocode", "could not restore the state"},
	} {
		t.Run(tc.fault, func(t *testing.T) {
			h.t = t
			h.set("fault", tc.fault)
			h.hupFails(tc.log)
			h.set("fault", "")
			waitProgress(t, ss)
		})
	}
	h.t = t
	h.hup()
	waitProgress(t, ss)
	for _, s := range ss {
		_, _, pids := s.finish(t)
		require.Equal(t, 2, pids)
	}
}

// A session's running timeout moves with it and fires in the new process
// after the time it had left, not at once, not again from the start.
func TestHandoffTimerTravels(t *testing.T) {
	h := startSeqServer(t)
	_, ask := lineClient(t, h.addr)
	// The timeout is long enough that a handoff on a loaded machine ends
	// before it fires; the bounds below are relative to when the handoff
	// ended, so load does not decide the outcome.
	const timeout = 3 * time.Second
	armed := time.Now()
	require.Equal(t, "armed", ask(fmt.Sprintf("arm %d a", timeout.Milliseconds())))
	time.Sleep(300 * time.Millisecond) // real processes: real time
	pid := h.hup()
	handedOver := time.Since(armed)
	require.Less(t, handedOver, timeout-500*time.Millisecond, "the handoff took too long for this test")
	require.Equal(t, "", ask("fired"), "not fired at the handoff")
	waitFor(t, "the timeout", func() bool { return ask("fired") != "" })
	took := time.Since(armed)
	require.Equal(t, "a@"+strconv.Itoa(pid), ask("fired"))
	require.GreaterOrEqual(t, took, timeout)
	// Set again from the start, it would fire no sooner than handedOver +
	// timeout after arming.
	require.Less(t, took, handedOver+timeout, "fired after the time it had left, not from the start")
}

// A timeout's time left counts from the capture of its machine: the time
// the new process takes to restore it (here 1.5 s between receiving the
// state and restoring the machines) is taken off. Before, it was added: the
// timeout fired that much later than it would have without the restart.
func TestHandoffTimerCountsTheHandoff(t *testing.T) {
	h := startSeqServer(t)
	_, ask := lineClient(t, h.addr)
	const timeout, slow = 2500 * time.Millisecond, 1500 * time.Millisecond
	h.set("fault", "slow:received:"+slow.String())
	armed := time.Now()
	require.Equal(t, "armed", ask(fmt.Sprintf("arm %d a", timeout.Milliseconds())))
	time.Sleep(300 * time.Millisecond) // real processes: real time
	pid := h.hup()
	h.set("fault", "")
	waitFor(t, "the timeout", func() bool { return ask("fired") != "" })
	took := time.Since(armed)
	require.Equal(t, "a@"+strconv.Itoa(pid), ask("fired"))
	require.GreaterOrEqual(t, took, timeout)
	// With the 1.5 s added, it would fire no sooner than 4 s after arming.
	require.Less(t, took, timeout+time.Second, "fired %v after arming: the handoff's time was added", took)
}

// A process that connects to the handoff socket before the new process
// (one of the same user, here the test) is closed without a byte, logged,
// and the real new process, a child of the old one, then takes the state
// over. Before, the old process took the first peer: the stranger got the
// header, and the new process found no state and served without it.
func TestHandoffStrangerOnTheSocket(t *testing.T) {
	h := startSeqServer(t)
	_, ask := lineClient(t, h.addr)
	require.Regexp(t, `^1 \d+ v1 x$`, ask("x"))
	h.set("fault", "slow:connect:1s") // the new process connects after the stranger
	old := h.pid()
	sock := filepath.Join(h.dir, "handoff", fmt.Sprintf("handoff-%d.sock", old))
	require.NoError(t, syscall.Kill(old, syscall.SIGHUP))
	var c net.Conn
	waitFor(t, "the handoff socket", func() bool {
		var err error
		c, err = net.Dial("unix", sock)
		return err == nil
	})
	require.NoError(t, c.SetReadDeadline(time.Now().Add(3*time.Second)))
	b, err := io.ReadAll(c)
	require.NoError(t, err, "closed by the old process")
	require.Empty(t, b, "without a header")
	require.NoError(t, c.Close())
	pid := h.replaced(old)
	h.set("fault", "")
	require.Regexp(t, fmt.Sprintf(`^2 %d v1 y$`, pid), ask("y"), "the machine was handed over")
	require.Equal(t, 1, h.count("connection refused: not the new process"))
}

// Events waiting in a machine's mailbox travel with it and are handled, in
// order, in the new process; so are the bytes of a line its connection's
// reader had read and not handled (the line is completed after the
// handoff).
func TestHandoffQueuedEventsAndUnreadBytes(t *testing.T) {
	h := startSeqServer(t)
	c, ask := lineClient(t, h.addr)
	// The machine is busy until the handoff has paused the connections
	// (and suspended it): these events wait in its mailbox.
	require.Equal(t, "cast", ask("hold"))
	var want []string
	for i := range 50 {
		require.Equal(t, "cast", ask(fmt.Sprintf("cast q%d", i)))
		want = append(want, fmt.Sprintf("q%d", i))
	}
	_, err := fmt.Fprint(c, "cast par") // half a line, read and not handled
	require.NoError(t, err)
	old := h.pid()
	pid := h.hup()
	require.Equal(t, "cast", ask("tial"))
	want = append(want, "partial")
	for i := range want {
		want[i] += "@" + strconv.Itoa(pid)
	}
	require.Equal(t, strings.Join(want, ","), ask("fired"), "handled in the new process, in order")
	require.Equal(t, 1, h.count(fmt.Sprintf("state handed over\" pid=%d", old)))
	require.Regexp(t, fmt.Sprintf(`state handed over" pid=%d machines=1 conns=1 .* queued=50 unread=8 flags=0\n`, old), h.logText())
}

// lineClient dials a test server's line protocol at addr, closed when the
// test ends, and returns the connection and ask, which sends a line and
// returns the answer line (without its newline), each within 10 seconds.
func lineClient(t *testing.T, addr string) (net.Conn, func(line string) string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	r := bufio.NewReader(c)
	return c, func(line string) string {
		t.Helper()
		require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
		_, err := fmt.Fprintf(c, "%s\n", line)
		require.NoError(t, err)
		reply, err := r.ReadString('\n')
		require.NoError(t, err)
		return strings.TrimSuffix(reply, "\n")
	}
}
