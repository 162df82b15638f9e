package pluginrpc

import (
	"errors"
	"fmt"
	"net/rpc"
	"time"

	"github.com/hashicorp/go-plugin"
)

// The go-plugin handshake. The cookie only tells a Hotline plugin that a
// Hotline host started it; it is no security measure (the checksum is).
const (
	cookieKey   = "HOTLINE_PLUGIN"
	cookieValue = "b6f1d3a4-hotline-plugin-v1"

	// pluginName is the one go-plugin plugin a Hotline plugin serves: the
	// control service.
	pluginName = "hotline"

	// envSocketDir is go-plugin's variable for the directory of the
	// plugin's Unix socket; the host sets it to the directory it owns.
	envSocketDir = "PLUGIN_UNIX_SOCKET_DIR"
)

func handshake(protocol int) plugin.HandshakeConfig {
	return plugin.HandshakeConfig{
		ProtocolVersion:  uint(protocol),
		MagicCookieKey:   cookieKey,
		MagicCookieValue: cookieValue,
	}
}

// controlPlugin is the go-plugin plugin of the control plane: one net/rpc
// service, "Plugin", with two methods. Open takes a msgpack wire.Hello and
// answers a msgpack wire.Welcome; the calls go through the pool of event
// connections to the socket that it opens. Nudge(i) tells the plugin that a
// call on the connection of index i has waited long (see server.nudge). On the host, server is nil.
type controlPlugin struct {
	server *controlServer
}

func (p *controlPlugin) Server(*plugin.MuxBroker) (any, error) {
	if p.server == nil {
		return nil, errors.New("pluginrpc: the host serves no control service")
	}
	return p.server, nil
}

func (p *controlPlugin) Client(_ *plugin.MuxBroker, c *rpc.Client) (any, error) {
	return &controlClient{c: c}, nil
}

// controlServer is the plugin's net/rpc service.
type controlServer struct {
	open  func(hello []byte) ([]byte, error)
	nudge func(conn int)
}

// Nudge hands the reading of the event connection of index conn off from
// a slow handler.
func (s *controlServer) Nudge(conn int, _ *struct{}) error {
	s.nudge(conn)
	return nil
}

// Open opens the event socket (see controlPlugin).
func (s *controlServer) Open(hello []byte, welcome *[]byte) error {
	w, err := s.open(hello)
	if err != nil {
		return err
	}
	*welcome = w
	return nil
}

// controlClient is the host's stub of the control service.
type controlClient struct {
	c *rpc.Client
}

// nudge calls Nudge for the event connection of index conn, and does not
// wait for the answer.
func (c *controlClient) nudge(conn int) {
	c.c.Go("Plugin.Nudge", conn, new(struct{}), make(chan *rpc.Call, 1))
}

// open calls Open, waiting at most timeout.
func (c *controlClient) open(hello []byte, timeout time.Duration) ([]byte, error) {
	var welcome []byte
	call := c.c.Go("Plugin.Open", hello, &welcome, make(chan *rpc.Call, 1))
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-call.Done:
		if call.Error != nil {
			return nil, call.Error
		}
		return welcome, nil
	case <-t.C:
		return nil, fmt.Errorf("no answer to Open within %v", timeout)
	}
}
