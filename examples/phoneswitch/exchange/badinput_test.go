package exchange_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotline-go/hotline/examples/phoneswitch/exchange"
	"github.com/hotline-go/hotline/examples/phoneswitch/protocol"
	"github.com/stretchr/testify/require"
)

// Bad input on the phone port: the switch stays up, answers what it can,
// and the line (or the next one) goes on working.

// A line of megabytes, with or without its end, costs the switch one
// error and a bounded buffer; the line goes on.
func TestOversizedLines(t *testing.T) {
	s, addr := start(t)
	c := dial(t, addr)
	huge := bytes.Repeat([]byte("A"), 4<<20)
	go func() {
		// Written while the switch reads, so the kernel's buffers do not
		// have to hold 4 MiB: a write error fails the reads below.
		_, _ = c.nc.Write(append(append([]byte{}, huge...), "\nREGISTER 100\nSTATUS\n"...))
	}()
	c.expect("ERR line-too-long", "OK REGISTERED 100", "STATUS 100 off v1 calls=0 frames_in=0 frames_out=0")
	// A line over the limit by one byte, then one at the limit.
	c.send(strings.Repeat("B", protocol.MaxLine+1))
	c.expect("ERR line-too-long")
	c.send(strings.Repeat("C", protocol.MaxLine-1))
	c.expect("ERR unknown-command")
	var m strings.Builder
	require.NoError(t, s.WriteMetrics(&m))
	require.Contains(t, m.String(), "phoneswitch_lines_too_long_total 2\n")
}

// Binary garbage, with and without line ends, gets protocol errors only;
// a REGISTER after it works.
func TestBinaryGarbage(t *testing.T) {
	_, addr := start(t)
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, 256<<10)
	for i := range garbage {
		garbage[i] = byte(rng.UintN(256))
	}
	c := dial(t, addr)
	go func() { _, _ = c.nc.Write(append(garbage, "\nREGISTER 100\n"...)) }()
	for {
		l := c.readWithin(30 * time.Second)
		if l == "OK REGISTERED 100" {
			break
		}
		require.True(t, strings.HasPrefix(l, "ERR "), "the switch answered garbage with %q", l)
		_, err := protocol.ParseReply(l)
		require.NoError(t, err)
	}
	c.do("STATUS", "STATUS 100 off v1 calls=0 frames_in=0 frames_out=0")
}

// A phone that closes its sending side mid-call hangs up: its peer hears
// HANGUP, the phone gets the rest of its answers and EOF, and the number
// is free again. A last line without its "\n" is still handled.
func TestHalfClosed(t *testing.T) {
	s, addr := start(t)
	a, b := phoneOn(t, addr, "100"), phoneOn(t, addr, "200")
	call(a, b, "200", "100")
	_, err := io.WriteString(a.nc, "AUDIO 1 last")
	require.NoError(t, err)
	require.NoError(t, a.nc.(*net.TCPConn).CloseWrite())
	b.expect("AUDIO 1 last", "HANGUP")
	rest, err := io.ReadAll(a.br)
	require.NoError(t, err)
	require.Equal(t, "ONHOOK\n", string(rest))
	b.do("ONHOOK", "ONHOOK")
	require.Eventually(t, func() bool { return s.Status().Phones == 1 }, 5*time.Second, time.Millisecond)
	phoneOn(t, addr, "100")
}

// A phone that never reads: its queue fills, its peer is slowed for the
// stall timeout at most, then the switch drops it (counted, logged with
// the reason) and its peer hears HANGUP. Another call, meanwhile, loses
// nothing and is never held up for longer than that timeout.
func TestNeverReadsDoesNotBlockOthers(t *testing.T) {
	const stall = 300 * time.Millisecond
	s, addr := start(t, exchange.WithWriteQueue(4), exchange.WithStallTimeout(stall))
	a, b := phoneOn(t, addr, "100"), phoneOn(t, addr, "200")
	c, d := phoneOn(t, addr, "300"), phoneOn(t, addr, "400")
	call(a, b, "200", "100")
	call(c, d, "400", "300")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // a talks to b, who never reads
		payload := strings.Repeat("z", protocol.MaxPayload)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := fmt.Fprintf(a.nc, "AUDIO %d %s\n", i, payload); err != nil {
				return
			}
		}
	})
	// c talks to d the whole time, a frame at a time, each read back.
	var longest time.Duration
	frames := 0
	hungUp := false
	for !hungUp {
		start := time.Now()
		c.send(fmt.Sprintf("AUDIO %d f", frames))
		require.Equal(t, fmt.Sprintf("AUDIO %d f", frames), d.readWithin(30*time.Second))
		longest = max(longest, time.Since(start))
		frames++
		// a hears HANGUP once b is dropped (after a's queue of ERR
		// lines, if any).
		require.NoError(t, a.nc.SetReadDeadline(time.Now().Add(time.Millisecond)))
		for {
			l, err := a.br.ReadString('\n')
			if err != nil {
				break
			}
			if l == "HANGUP\n" {
				hungUp = true
				break
			}
		}
	}
	close(stop)
	require.NoError(t, a.nc.Close())
	wg.Wait()
	t.Logf("c -> d: %d frames while b filled up and was dropped; the longest round trip %s", frames, longest)
	// Round trips through another call are not held up by b; a generous
	// bound for a loaded machine under -race, still far from blocking.
	require.Less(t, longest, 10*stall+2*time.Second)
	var m strings.Builder
	require.NoError(t, s.WriteMetrics(&m))
	require.Contains(t, m.String(), "phoneswitch_slow_closed_total 1\n")
	// b's line is closed.
	require.NoError(t, b.nc.SetReadDeadline(time.Now().Add(30*time.Second)))
	_, err := io.Copy(io.Discard, b.br)
	require.NoError(t, err)
}

// Thousands of connections opened and dropped, in every way (at once,
// mid-line, after REGISTER, half-closed), leave the switch as it was:
// no connection, no phone, the goroutines it had; and it serves the next
// phone. While a thousand idle lines are open, each costs a bounded
// amount of memory (logged).
func TestManyConnections(t *testing.T) {
	s, addr := start(t)
	// The switch's own goroutines (its supervisor's, the release
	// handler's) start with its first phone.
	first := phoneOn(t, addr, "100")
	require.NoError(t, first.nc.Close())
	require.Eventually(t, func() bool { return s.Status().Conns == 0 }, 5*time.Second, time.Millisecond)
	base := runtime.NumGoroutine()
	const n = 2000
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			nc, err := net.Dial("tcp", addr)
			if !assertNoError(t, err) {
				return
			}
			defer nc.Close()
			switch i % 4 {
			case 0: // dropped at once
			case 1: // mid-line
				_, err = io.WriteString(nc, "REGISTER 12")
			case 2: // registered, then dropped
				_, err = fmt.Fprintf(nc, "REGISTER %d\nOFFHOOK\n", 100000+i)
			case 3: // half-closed, its answers read
				_, err = io.WriteString(nc, "STATUS\n")
				if err == nil {
					err = nc.(*net.TCPConn).CloseWrite()
				}
				if err == nil {
					_, err = io.ReadAll(nc)
				}
			}
			assertNoError(t, err)
		})
	}
	wg.Wait()
	require.Eventually(t, func() bool {
		st := s.Status()
		return st.Conns == 0 && st.Phones == 0
	}, 30*time.Second, 10*time.Millisecond)
	// The actor System keeps up to 4×GOMAXPROCS idle workers parked
	// (actor.WithIdleWorkers); nothing else may stay.
	if !assertEventually(func() bool { return runtime.NumGoroutine() <= base+4*runtime.GOMAXPROCS(0) }, 10*time.Second) {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines: %d before, %d after:\n%s", base, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
	}
	phoneOn(t, addr, "100").do("STATUS", "STATUS 100 off v1 calls=0 frames_in=0 frames_out=0")

	// Idle registered lines: what each costs.
	const idle = 1000
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	conns := make([]net.Conn, 0, idle)
	defer func() {
		for _, nc := range conns {
			require.NoError(t, nc.Close())
		}
	}()
	for i := range idle {
		nc, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		conns = append(conns, nc)
		_, err = fmt.Fprintf(nc, "REGISTER %d\n", 200000+i)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return s.Status().Phones == idle+1 }, 30*time.Second, 10*time.Millisecond)
	runtime.GC()
	runtime.ReadMemStats(&after)
	perConn := (int64(after.HeapInuse+after.StackInuse) - int64(before.HeapInuse+before.StackInuse)) / idle
	perG := float64(runtime.NumGoroutine()-g0) / idle
	t.Logf("an idle registered line costs %d bytes of heap and stack (both ends of the loopback connection, its phone machine included) and %.1f goroutines", perConn, perG)
	// The bound stated in doc/reliability.md: the write queue (256 lines
	// of at most 1 KiB) is allocated as a channel of strings, its lines
	// only while queued; an idle line is a few KiB.
	require.Less(t, perConn, int64(64<<10))
}

func assertNoError(t *testing.T, err error) bool {
	t.Helper()
	if err != nil {
		t.Error(err)
		return false
	}
	return true
}

// assertEventually polls cond until it holds or d has passed.
func assertEventually(cond func() bool, d time.Duration) bool {
	for deadline := time.Now().Add(d); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}
