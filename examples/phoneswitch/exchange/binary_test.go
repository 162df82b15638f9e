package exchange_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hotline-go/hotline/examples/phoneswitch/exchange"
	"github.com/hotline-go/hotline/upgrade"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// pauseAll pauses every connection in parallel, as upgrade.Handoff does.
func pauseAll(t *testing.T, conns []upgrade.Conn) ([][]byte, []error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	unread, errs := make([][]byte, len(conns)), make([]error, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() { unread[i], errs[i] = c.Pause(ctx) })
	}
	wg.Wait()
	return unread, errs
}

// A binary restart's Pause stops every reader of a call streaming both
// ways, mid-line; a connection that ended meanwhile says so; Resume (after
// a failed handoff) goes on with nothing lost or reordered.
func TestHandoffPauseResume(t *testing.T) {
	s, addr := start(t)
	a, b := phoneOn(t, addr, "100"), phoneOn(t, addr, "200")
	gone := dial(t, addr)
	call(a, b, "200", "100")
	// The dial returns once the kernel has the connection; the switch
	// counts it once it has accepted it.
	require.Eventually(t, func() bool { return exchange.ConnCount(s) == 3 }, 10*time.Second, time.Millisecond)
	conns, err := exchange.HandoffConns(s)
	require.NoError(t, err)
	require.Len(t, conns, 3)
	require.NoError(t, gone.nc.Close())
	// Once the switch has seen that line end, its reader cannot park: a
	// pause of it reports the end (before, under load, the pause could
	// come first and find it parked).
	require.Eventually(t, func() bool { return exchange.ConnCount(s) == 2 }, 10*time.Second, time.Millisecond)

	stop := make(chan struct{})
	wait := stream(t, stop, a, b)
	time.Sleep(20 * time.Millisecond)
	for round := range 2 {
		_, errs := pauseAll(t, conns)
		closed := 0
		for _, err := range errs {
			if err != nil {
				require.ErrorIs(t, err, net.ErrClosed, "round %d", round)
				closed++
			}
		}
		require.Equal(t, 1, closed, "round %d: the line that ended", round)
		time.Sleep(10 * time.Millisecond) // paused: the phones' frames wait in the sockets
		conns[0].Resume()                 // resumes every line
		for _, c := range conns[1:] {
			c.Resume() // nothing left to resume
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	sent := wait()
	expectFrames(t, b, sent[0])
	expectFrames(t, a, sent[1])
	a.do("ONHOOK", "ONHOOK")
	b.expect("HANGUP")
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { require.NoError(t, ln.Close()) }()
	client, err = net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	server, err = ln.Accept()
	require.NoError(t, err)
	return client, server
}

// A line handed over whose machine had ended before the handoff (it
// failed, and nobody had noticed on that line yet) fails as after a
// crash: ERR internal, then closed, once the process is ready. The other
// lines are restored.
func TestRestoreLineWithoutMachine(t *testing.T) {
	s, _ := start(t)
	orphanClient, orphan := tcpPair(t)
	defer func() { require.NoError(t, orphanClient.Close()) }()
	freshClient, fresh := tcpPair(t)
	meta := func(number string) []byte {
		b, err := msgpack.Marshal(exchange.LineMeta{Number: number})
		require.NoError(t, err)
		return b
	}
	require.NoError(t, s.Restore(context.Background(), &upgrade.Restored{Conns: map[string]upgrade.RestoredConn{
		"c1-1": {Conn: orphan, Owner: "300", Meta: meta("300")},
		"c1-2": {Conn: fresh, Meta: meta("")},
	}}))
	s.Ready() // this process owns the lines: the orphan is answered
	require.NoError(t, orphanClient.SetReadDeadline(time.Now().Add(10*time.Second)))
	rest, err := io.ReadAll(orphanClient)
	require.NoError(t, err)
	require.Equal(t, "ERR internal\n", string(rest))
	c := &client{t: t, nc: freshClient, br: bufio.NewReader(freshClient)}
	t.Cleanup(func() { require.NoError(t, freshClient.Close()) })
	c.do("REGISTER 300", "OK REGISTERED 300")
	c.do("STATUS", "STATUS 300 off v1 calls=0 frames_in=0 frames_out=0")
}

// A Pause that fails (its ctx ended before the switch's readers stopped)
// withdraws: every line is read again, as the upgrade.Conn contract asks,
// whether or not another line's Pause went through (the handoff fails and
// resumes only those). Before, the switch's readers stayed paused for
// ever when no Pause of the round had succeeded: no line was read again.
func TestHandoffFailedPauseWithdraws(t *testing.T) {
	s, addr := start(t)
	a, b := phoneOn(t, addr, "100"), phoneOn(t, addr, "200")
	require.Eventually(t, func() bool { return exchange.ConnCount(s) == 2 }, 10*time.Second, time.Millisecond)
	conns, err := exchange.HandoffConns(s)
	require.NoError(t, err)
	require.Len(t, conns, 2)
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	failed := 0
	for range 20 { // the readers may stop before the ended ctx is seen
		_, err := conns[0].Pause(ended)
		if err == nil {
			conns[0].Resume()
			continue
		}
		require.ErrorIs(t, err, context.Canceled)
		failed++
		break
	}
	require.Equal(t, 1, failed, "no Pause with an ended ctx failed in 20 tries")
	a.do("STATUS", "STATUS 100 off v1 calls=0 frames_in=0 frames_out=0")
	b.do("STATUS", "STATUS 200 off v1 calls=0 frames_in=0 frames_out=0")
}
