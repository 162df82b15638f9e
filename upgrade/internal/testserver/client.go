package testserver

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Bye is the line a draining server sends on each connection: the client
// reads the answer to the request it sent, if any, then closes.
const Bye = "bye"

// Client is one connection to the line echo. It is not safe for concurrent
// use.
type Client struct {
	conn    net.Conn
	br      *bufio.Reader
	closing bool // the server said bye
}

// Dial connects to the echo at network, addr.
func Dial(network, addr string) (*Client, error) {
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &Client{conn: c, br: bufio.NewReader(c)}, nil
}

// Echo sends msg (one line, without newline) and returns the PID of the
// process that answered. When it returns, Closing reports whether the server
// said goodbye.
func (c *Client) Echo(msg string) (pid int, err error) {
	if err := c.conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return 0, err
	}
	if _, err := fmt.Fprintf(c.conn, "%s\n", msg); err != nil {
		return 0, fmt.Errorf("send %q: %w", msg, err)
	}
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			return 0, fmt.Errorf("answer to %q: %w", msg, err)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == Bye {
			c.closing = true
			continue
		}
		f := strings.SplitN(line, " ", 3)
		if len(f) != 3 || f[0] != "echo" || f[2] != msg {
			return 0, fmt.Errorf("answer to %q: got %q", msg, line)
		}
		return strconv.Atoi(f[1])
	}
}

// Closing reports whether the server said goodbye: the client should close
// and dial again.
func (c *Client) Closing() bool { return c.closing }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }
