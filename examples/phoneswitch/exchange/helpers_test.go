package exchange_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/examples/phoneswitch/exchange"
	"github.com/hotline-go/hotline/examples/phoneswitch/phone"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/upgrade"
	"github.com/stretchr/testify/require"
)

const connectedAt = 1700000000123

// start runs a switch on v1 and v2 of the phone, on a loopback listener,
// closed when the test ends.
func start(t testing.TB, opts ...exchange.Option) (*exchange.Switch, string) {
	t.Helper()
	s, _, addr := startRelease(t, []fsm.Code{phone.V1(), phone.V2()}, opts...)
	return s, addr
}

// startRelease runs a switch whose release handler has codes, and returns
// the handler too; everything ends with the test.
func startRelease(t testing.TB, codes []fsm.Code, opts ...exchange.Option) (*exchange.Switch, *upgrade.ReleaseHandler, string) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := actor.NewSystem(actor.WithLogger(log))
	rh, err := upgrade.NewReleaseHandler(sys)
	require.NoError(t, err)
	for _, c := range codes {
		require.NoError(t, rh.Register(c))
	}
	opts = append([]exchange.Option{
		exchange.WithLogger(log),
		exchange.WithClock(func() time.Time { return time.UnixMilli(connectedAt) }),
	}, opts...)
	s, err := exchange.New(sys, rh, opts...)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		require.NoError(t, ln.Close())
		require.NoError(t, <-served)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, s.Close(ctx))
		require.NoError(t, sys.Shutdown(ctx))
		require.NoError(t, rh.Close(ctx))
	})
	return s, rh, ln.Addr().String()
}

// client is a phone line.
type client struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := nc.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			t.Error(err)
		}
	})
	return &client{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (c *client) send(lines ...string) {
	c.t.Helper()
	for _, l := range lines {
		_, err := io.WriteString(c.nc, l+"\n")
		require.NoError(c.t, err)
	}
}

func (c *client) read() string {
	c.t.Helper()
	return c.readWithin(5 * time.Second)
}

// readWithin reads a line, failing the test if none comes within d (a
// guard against a hang, not a measure of speed).
func (c *client) readWithin(d time.Duration) string {
	c.t.Helper()
	require.NoError(c.t, c.nc.SetReadDeadline(time.Now().Add(d)))
	l, err := c.br.ReadString('\n')
	require.NoError(c.t, err)
	return l[:len(l)-1]
}

func (c *client) expect(want ...string) {
	c.t.Helper()
	for _, w := range want {
		require.Equal(c.t, w, c.read())
	}
}

// do sends a line and expects the replies.
func (c *client) do(line string, want ...string) {
	c.t.Helper()
	c.send(line)
	c.expect(want...)
}

func phoneOn(t *testing.T, addr, number string) *client {
	t.Helper()
	c := dial(t, addr)
	c.do("REGISTER "+number, "OK REGISTERED "+number)
	return c
}

// call connects a to b.
func call(a, b *client, bnum, anum string) {
	a.do("OFFHOOK", "DIALTONE")
	for _, k := range bnum {
		a.send("KEY " + string(k))
	}
	a.do("KEY #", "RINGBACK "+bnum)
	b.expect("RING " + anum)
	b.do("OFFHOOK", "CONNECTED "+anum)
	a.expect("CONNECTED " + bnum)
}

// stream sends numbered frames from each phone until stop is closed; it
// returns how many each sent.
func stream(t *testing.T, stop <-chan struct{}, phones ...*client) func() []int {
	var wg sync.WaitGroup
	sent := make([]int, len(phones))
	for i, p := range phones {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					sent[i] = n
					return
				default:
				}
				// Lines cut in two on the wire test the handoff of unread bytes.
				line := fmt.Sprintf("AUDIO %d f%d\n", n, n)
				for _, part := range []string{line[:4], line[4:]} {
					_, err := p.nc.Write([]byte(part))
					require.NoError(t, err)
				}
			}
		})
	}
	return func() []int {
		wg.Wait()
		return sent
	}
}

func expectFrames(t *testing.T, c *client, n int) {
	t.Helper()
	for i := range n {
		require.Equal(t, fmt.Sprintf("AUDIO %d f%d", i, i), c.read())
	}
}
