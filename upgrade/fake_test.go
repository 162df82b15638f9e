package upgrade

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
)

// fakeFlip stands for tableflip's Upgrader inside one process. Each Upgrade
// call is handed to the test on upgrades; the test answers on the channel it
// receives (nil: the new process took over).
type fakeFlip struct {
	hasParent  bool
	parentDone chan error // WaitForParent returns what arrives here
	upgrades   chan chan error
	onReady    func() error // what Ready does; nil: nothing

	exitOnce sync.Once
	exitC    chan struct{}
	stopOnce sync.Once
	stopC    chan struct{}
}

func newFakeFlip() *fakeFlip {
	return &fakeFlip{
		parentDone: make(chan error, 1),
		upgrades:   make(chan chan error),
		exitC:      make(chan struct{}),
		stopC:      make(chan struct{}),
	}
}

func (f *fakeFlip) Listen(network, addr string) (net.Listener, error) {
	return net.Listen(network, addr)
}

func (f *fakeFlip) ListenPacket(network, addr string) (net.PacketConn, error) {
	return net.ListenPacket(network, addr)
}

func (f *fakeFlip) Ready() error {
	if f.onReady != nil {
		return f.onReady()
	}
	return nil
}

func (f *fakeFlip) Upgrade() error {
	reply := make(chan error, 1)
	select {
	case <-f.stopC:
		return errors.New("terminating")
	case <-f.exitC:
		return errors.New("already upgraded")
	case f.upgrades <- reply:
	}
	select {
	case err := <-reply:
		if err == nil {
			f.exit()
		}
		return err
	case <-f.stopC:
		return errors.New("terminating")
	}
}

func (f *fakeFlip) exit() { f.exitOnce.Do(func() { close(f.exitC) }) }

func (f *fakeFlip) Stop() {
	f.stopOnce.Do(func() { close(f.stopC) })
	f.exit()
}

func (f *fakeFlip) HasParent() bool { return f.hasParent }

func (f *fakeFlip) WaitForParent(ctx context.Context) error {
	select {
	case err := <-f.parentDone:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// logBuffer collects a Restarter's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testRestarter returns a Restarter around f that logs to the returned
// buffer, watches no real signal, and is stopped when the test ends.
func testRestarter(t *testing.T, f *fakeFlip, opts ...RestartOption) (*Restarter, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	cfg := defaultRestartConfig()
	cfg.logger = slog.New(slog.NewTextHandler(logs, nil))
	cfg.signals = nil
	for _, o := range opts {
		o(&cfg)
	}
	r := newRestarter(f, cfg)
	t.Cleanup(r.Stop)
	return r, logs
}

// withSignalChan makes the Restarter take its signals from the returned
// channel instead of the process's.
func withSignalChan(c *chan<- os.Signal) RestartOption {
	return func(cfg *restartConfig) {
		cfg.signals = []os.Signal{os.Interrupt} // any: only the channel matters
		cfg.notify = func(ch chan<- os.Signal, _ ...os.Signal) { *c = ch }
		cfg.stopNotify = func(chan<- os.Signal) {}
	}
}
