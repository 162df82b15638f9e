package exchange_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/hotline-go/hotline/examples/phoneswitch/exchange"
	"github.com/hotline-go/hotline/examples/phoneswitch/phone"
	"github.com/stretchr/testify/require"
)

const connectedAt = 1700000000123

// start runs a switch on a loopback listener, closed when the test ends.
func start(t testing.TB, opts ...exchange.Option) (*exchange.Switch, string) {
	t.Helper()
	opts = append([]exchange.Option{
		exchange.WithVersions(phone.V1(), phone.V2()),
		exchange.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		exchange.WithClock(func() time.Time { return time.UnixMilli(connectedAt) }),
	}, opts...)
	s, err := exchange.New(opts...)
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
	})
	return s, ln.Addr().String()
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
	require.NoError(c.t, c.nc.SetReadDeadline(time.Now().Add(5*time.Second)))
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
