package exchange_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/examples/phoneswitch/exchange"
	"github.com/hotline-go/hotline/examples/phoneswitch/phone"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/upgrade"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// recordedConn is the switch's end of a restored line: it records every
// write, so that a test can tell that none happened before Ready.
type recordedConn struct {
	net.Conn
	mu     sync.Mutex
	writes []string
}

func (c *recordedConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, string(b))
	c.mu.Unlock()
	return c.Conn.Write(b)
}

func (c *recordedConn) written() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.writes...)
}

// restoredBubble is a switch, in a synctest bubble, given lines as a binary
// restart's Receive would: machines already running, connections over
// net.Pipe (whose ends block durably, as synctest needs).
type restoredBubble struct {
	t       *testing.T
	sys     *actor.System
	rh      *upgrade.ReleaseHandler
	s       *exchange.Switch
	got     *upgrade.Restored
	servers map[string]*recordedConn
	clients map[string]*client
}

func newRestoredBubble(t *testing.T) *restoredBubble {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := actor.NewSystem(actor.WithLogger(log))
	rh, err := upgrade.NewReleaseHandler(sys)
	require.NoError(t, err)
	require.NoError(t, rh.Register(phone.V1()))
	require.NoError(t, rh.Register(phone.V2()))
	s, err := exchange.New(sys, rh, exchange.WithLogger(log),
		exchange.WithClock(func() time.Time { return time.UnixMilli(connectedAt) }))
	require.NoError(t, err)
	return &restoredBubble{t: t, sys: sys, rh: rh, s: s,
		got:     &upgrade.Restored{Machines: map[string]actor.Ref{}, Conns: map[string]upgrade.RestoredConn{}},
		servers: map[string]*recordedConn{}, clients: map[string]*client{}}
}

// machine starts number's machine and gives it events, as its line had.
func (b *restoredBubble) machine(number string, events ...any) {
	ctx := context.Background()
	ref, err := b.rh.Start(ctx, phone.Name, fsm.WithID(number))
	require.NoError(b.t, err)
	for _, ev := range events {
		_, err := fsm.Call(ctx, ref, ev)
		require.NoError(b.t, err)
	}
	b.got.Machines[number] = ref
}

// inCall starts the machines of a call from caller to callee, connected.
func (b *restoredBubble) inCall(caller, callee string) {
	dial := []any{phone.OffHook{At: connectedAt}}
	for _, k := range callee {
		dial = append(dial, phone.Key{Key: string(k)})
	}
	dial = append(dial, phone.Key{Key: "#"})
	b.machine(caller, dial...)
	b.machine(callee, phone.Ring{From: caller}, phone.OffHook{At: connectedAt})
	_, err := fsm.Call(context.Background(), b.got.Machines[caller], phone.Answered{From: callee, At: connectedAt})
	require.NoError(b.t, err)
}

// line hands over a connection registered to number, with unread bytes.
func (b *restoredBubble) line(number, unread string) {
	meta, err := msgpack.Marshal(exchange.LineMeta{Number: number})
	require.NoError(b.t, err)
	cl, sv := net.Pipe()
	rec := &recordedConn{Conn: sv}
	b.servers[number] = rec
	b.clients[number] = &client{t: b.t, nc: cl, br: bufio.NewReader(cl)}
	b.got.Conns["c1-"+number] = upgrade.RestoredConn{Conn: rec, Owner: number, Unread: []byte(unread), Meta: meta}
}

// noWrites checks that the switch has written nothing to any line.
func (b *restoredBubble) noWrites(when string) {
	b.t.Helper()
	for number, rec := range b.servers {
		require.Empty(b.t, rec.written(), "%s: the switch wrote to line %s", when, number)
	}
}

func (b *restoredBubble) close() {
	ctx := context.Background()
	for _, c := range b.clients {
		require.NoError(b.t, c.nc.Close())
	}
	require.NoError(b.t, b.s.Close(ctx))
	require.NoError(b.t, b.sys.Shutdown(ctx))
	require.NoError(b.t, b.rh.Close(ctx))
}

// A binary restart's new process acts on no restored line before it is
// ready (the old process may yet resume them all from what it handed
// over): bytes the old process had read and not handled are not handled,
// a line whose machine had ended is not answered, a machine whose line had
// ended does not hang up its peer, and nothing is written; Ready does all
// of it. Before, Restore did each at once: the unread AUDIO reached the
// peer, the peer of the line gone got HANGUP, the orphan ERR internal.
func TestRestoredLinesWaitForReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newRestoredBubble(t)
		b.inCall("100", "200") // 100 sent a frame the old process had read, not handled
		b.line("100", "AUDIO 1 hi\n")
		b.line("200", "")
		b.inCall("300", "400") // 300's line ended during the handoff
		b.line("400", "")
		b.line("500", "") // its machine had ended
		ctx := context.Background()
		require.NoError(t, b.s.Restore(ctx, b.got))
		synctest.Wait()
		b.noWrites("before Ready")

		// A pause (a next handoff) before Ready hands the unread bytes on
		// untouched.
		conns, err := exchange.HandoffConns(b.s)
		require.NoError(t, err)
		var unread []string
		for _, hc := range conns {
			got, err := hc.Pause(ctx)
			require.NoError(t, err)
			if len(got) > 0 {
				unread = append(unread, string(got))
			}
		}
		require.Equal(t, []string{"AUDIO 1 hi\n"}, unread)
		conns[0].Resume()
		synctest.Wait()
		b.noWrites("after a pause and a resume before Ready")

		b.s.Ready()
		b.clients["200"].expect("AUDIO 1 hi")
		b.clients["400"].expect("HANGUP")
		b.clients["500"].expect("ERR internal")
		_, err = b.clients["500"].br.ReadString('\n')
		require.ErrorIs(t, err, io.EOF)
		b.clients["100"].do("STATUS", "STATUS 100 in_progress v1 peer=200 dir=out calls=1 frames_in=0 frames_out=1")
		b.clients["400"].do("STATUS", "STATUS 400 disconnecting v1 calls=1 frames_in=0 frames_out=0")
		b.s.Ready() // again: nothing more
		b.close()
	})
}

// A new process that fails before Ready closes the lines it restored
// without a word and without hanging up: the old process resumes them.
func TestRestoredLinesClosedBeforeReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newRestoredBubble(t)
		b.inCall("100", "200")
		b.line("100", "ONHOOK\n")
		b.line("200", "")
		b.line("500", "")
		require.NoError(t, b.s.Restore(context.Background(), b.got))
		synctest.Wait()
		b.close()
		b.noWrites("closed before Ready")
	})
}

// A restored machine is moved under the switch's supervisor whole: an
// event waiting in its mailbox (here: sent while it was suspended) is not
// lost on the way. Before, the move took a snapshot (state and data) that
// overtook the mailbox, and stopping the machine dropped the event.
func TestRestoredMachineKeepsItsMailbox(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newRestoredBubble(t)
		b.machine("600")
		ctx := context.Background()
		ref := b.got.Machines["600"]
		require.NoError(t, actor.Suspend(ctx, ref))
		require.NoError(t, fsm.Cast(ref, phone.OffHook{At: connectedAt}))
		b.line("600", "")
		require.NoError(t, b.s.Restore(ctx, b.got))
		b.s.Ready()
		b.clients["600"].do("STATUS", "STATUS 600 dialing v1 calls=0 frames_in=0 frames_out=0")
		b.close()
	})
}

// A handoff that begins while Ready still hangs up a machine restored
// without its line waits for that hang-up: it writes to a line (the
// peer's HANGUP) and changes machines, so a pause that returned first
// would hand the peer's line on without its HANGUP.
func TestPauseWaitsForRestoredHangUps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newRestoredBubble(t)
		b.inCall("300", "400") // 300's line ended during the handoff
		b.line("400", "")
		ctx := context.Background()
		require.NoError(t, b.s.Restore(ctx, b.got))
		ref, ok := exchange.PhoneRef(b.s, "300")
		require.True(t, ok)
		require.NoError(t, actor.Suspend(ctx, ref)) // its hang-up waits
		b.s.Ready()
		synctest.Wait()
		conns, err := exchange.HandoffConns(b.s)
		require.NoError(t, err)
		require.Len(t, conns, 1)
		paused := make(chan error, 1)
		go func() {
			_, err := conns[0].Pause(ctx)
			paused <- err
		}()
		synctest.Wait()
		select {
		case err := <-paused:
			t.Fatalf("the pause returned (%v) before the hang-up ended", err)
		default:
		}
		require.NoError(t, actor.Resume(ctx, ref))
		b.clients["400"].expect("HANGUP") // flushed by the pause
		require.NoError(t, <-paused)
		conns[0].Resume()
		b.clients["400"].do("STATUS", "STATUS 400 disconnecting v1 calls=1 frames_in=0 frames_out=0")
		b.close()
	})
}

// A phone whose machine fails after a binary restart hangs up its call
// for it, as before the restart: the new process learns each restored
// phone's peer from its machine's data. Before, the peer (the last phone
// a line had signalled) was not carried, and the other end of the call
// was never told.
func TestRestoredCrashHangsUpThePeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newRestoredBubble(t)
		b.inCall("100", "200")
		b.line("100", "")
		b.line("200", "")
		ctx := context.Background()
		require.NoError(t, b.s.Restore(ctx, b.got))
		b.s.Ready()
		ref, ok := exchange.PhoneRef(b.s, "100")
		require.True(t, ok)
		require.NoError(t, actor.Stop(ctx, ref, errors.New("a fault")))
		b.clients["100"].do("STATUS", "ERR internal")
		b.clients["200"].expect("HANGUP")
		b.clients["200"].do("STATUS", "STATUS 200 disconnecting v1 calls=1 frames_in=0 frames_out=0")
		b.close()
	})
}
