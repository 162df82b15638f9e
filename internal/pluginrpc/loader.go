package pluginrpc

import (
	"context"
	"encoding/hex"
	"sync"
)

// Loader shares plugin processes among their users: one [Client] per
// binary (path and checksum), started by the first [Loader.Load] and
// stopped when the last [Handle] to it is released. It is safe for
// concurrent use. The zero Loader is not usable: make one with
// [NewLoader].
type Loader struct {
	opts []Option

	mu      sync.Mutex
	clients map[string]*loaded
	closed  bool
}

type loaded struct {
	key  string
	c    *Client
	refs int
}

// Handle is one user's share of a loaded plugin. Release it when done.
type Handle struct {
	l    *Loader
	e    *loaded
	once sync.Once
}

// NewLoader returns a Loader whose Clients get opts (before the options of
// each Load).
func NewLoader(opts ...Option) *Loader {
	return &Loader{opts: opts, clients: make(map[string]*loaded)}
}

// Load returns a Handle to the plugin binary at path with the given
// SHA-256, starting its process unless it runs for another Handle, and
// waits until it has started. opts apply to a Client that this Load makes;
// a running one keeps its own. Load returns the errors of [Client.Start],
// and ErrClosed after [Loader.Close]. A Client that gave up
// ([ErrCrashLoop]) stays so until every Handle to it is released; the next
// Load then starts afresh.
func (l *Loader) Load(ctx context.Context, path string, checksum []byte, opts ...Option) (*Handle, error) {
	key := path + "\x00" + hex.EncodeToString(checksum)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, &Error{Plugin: newConfig(path, append(l.opts, opts...)).name, Err: ErrClosed}
	}
	e := l.clients[key]
	if e == nil {
		e = &loaded{key: key, c: New(path, checksum, append(append([]Option{}, l.opts...), opts...)...)}
		l.clients[key] = e
	}
	e.refs++
	l.mu.Unlock()

	h := &Handle{l: l, e: e}
	if err := e.c.Start(ctx); err != nil {
		_ = h.Release()
		return nil, err
	}
	return h, nil
}

// Client returns the Client of the plugin. Its calls fail with ErrClosed
// once the last Handle to it is released.
func (h *Handle) Client() *Client { return h.e.c }

// Release gives up the Handle. The last Release of a plugin's Handles stops
// its process (see [Client.Close]). Releasing again does nothing.
func (h *Handle) Release() error {
	var err error
	h.once.Do(func() { err = h.l.release(h.e) })
	return err
}

func (l *Loader) release(e *loaded) error {
	l.mu.Lock()
	e.refs--
	last := e.refs == 0
	if last && l.clients[e.key] == e {
		delete(l.clients, e.key)
	}
	l.mu.Unlock()
	if last {
		return e.c.Close()
	}
	return nil
}

// Loaded returns how many plugins have a process (or one starting) for
// their Handles.
func (l *Loader) Loaded() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}

// Close stops every plugin of the Loader, whatever Handles remain, and
// makes later Loads fail with ErrClosed. A host should Close its Loader
// before it exits, a binary restart included: processes are not handed
// over. (A plugin whose host died without stopping it exits by itself once
// it sees its event socket close.)
func (l *Loader) Close() error {
	l.mu.Lock()
	l.closed = true
	all := l.clients
	l.clients = make(map[string]*loaded)
	l.mu.Unlock()
	var wg sync.WaitGroup
	for _, e := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = e.c.Close()
		}()
	}
	wg.Wait()
	return nil
}
