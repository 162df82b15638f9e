package exchange_test

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hotline-go/hotline/examples/phoneswitch/protocol"
	"github.com/stretchr/testify/require"
)

// FuzzConn sends any bytes on a phone line: the switch answers only lines
// of the protocol, ends the connection cleanly when the client does, and
// serves the next connection.
func FuzzConn(f *testing.F) {
	for _, s := range []string{
		"REGISTER 100\nOFFHOOK\nKEY 1\nKEY 0\nKEY 0\nKEY #\nSTATUS\nONHOOK\n",
		"REGISTER 100\nREGISTER 100\nAUDIO 1 x\n" + strings.Repeat("Z", 3000) + "\nSTATUS",
		"STATUS\n\r\n\x00\xff KEY\n",
		"REGISTER 100\nOFFHOOK\nKEY 1\nKEY #\nONHOOK\nOFFHOOK\nKEY 9\nKEY 9\nKEY 9\nKEY 9\nKEY 9\nKEY 9\nKEY 9\nKEY 9\nKEY 9\n",
	} {
		f.Add(s)
	}
	_, addr := start(f)
	f.Fuzz(func(t *testing.T, in string) {
		nc, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer func() { require.NoError(t, nc.Close()) }()
		require.NoError(t, nc.SetDeadline(time.Now().Add(10*time.Second)))
		replies := make(chan []string, 1)
		go func() {
			var got []string
			sc := bufio.NewScanner(nc)
			for sc.Scan() {
				got = append(got, sc.Text())
			}
			replies <- got
		}()
		_, err = nc.Write([]byte(in))
		require.NoError(t, err)
		require.NoError(t, nc.(*net.TCPConn).CloseWrite())
		for _, line := range <-replies {
			_, err := protocol.ParseReply(line)
			require.NoError(t, err, "the switch sent %q", line)
		}
		// The number is free again, on a line that works.
		c := dial(t, addr)
		c.do("REGISTER 100", "OK REGISTERED 100")
		require.NoError(t, c.nc.(*net.TCPConn).CloseWrite())
		rest, err := io.ReadAll(c.br) // to EOF: hung up and unregistered
		require.NoError(t, err)
		require.Equal(t, "ONHOOK\n", string(rest))
	})
}
