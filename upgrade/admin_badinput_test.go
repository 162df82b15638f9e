package upgrade_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/upgrade"
)

// serveAdminSocket serves h's admin API on a socket in a short temporary
// directory until the test ends.
func serveAdminSocket(t *testing.T, h *upgrade.ReleaseHandler) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir, err := os.MkdirTemp("", "hladmin")
	require.NoError(t, err)
	path := filepath.Join(dir, "admin.sock")
	served := make(chan error, 1)
	go func() { served <- h.ServeAdmin(ctx, path) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-served)
		require.NoError(t, os.RemoveAll(dir))
	})
	require.Eventually(t, func() bool {
		c, err := net.Dial("unix", path)
		if err == nil {
			require.NoError(t, c.Close())
		}
		return err == nil
	}, relWait, relTick)
	return path
}

// lastAnswer sends raw bytes (then closes the sending side) and returns
// the answer's last line, decoded.
func lastAnswer(t *testing.T, path string, raw []byte) upgrade.AdminResponse {
	t.Helper()
	c, err := net.Dial("unix", path)
	require.NoError(t, err)
	defer func() { require.NoError(t, c.Close()) }()
	require.NoError(t, c.SetDeadline(time.Now().Add(30*time.Second)))
	go func() {
		// The server may answer and close before it read everything.
		if _, err := c.Write(raw); err == nil {
			_ = c.(*net.UnixConn).CloseWrite()
		}
	}()
	b, err := io.ReadAll(c)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var resp upgrade.AdminResponse
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &resp), "answer %q", b)
	require.True(t, resp.Done, "answer %q", b)
	return resp
}

// Bad input on the admin socket gets an error that says what was wrong,
// and the server goes on serving.
func TestAdminBadInput(t *testing.T) {
	_, h := newRelease(t)
	startN(t, h, 3)
	path := serveAdminSocket(t, h)
	garbage := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range garbage {
		garbage[i] = byte(rng.UintN(256))
		if garbage[i] == '\n' {
			garbage[i] = 0
		}
	}
	for _, tt := range []struct {
		name string
		raw  []byte
		want string
	}{
		{"binary garbage", append(garbage, '\n'), "bad admin request"},
		{"an oversized line", []byte(`{"op":"status","who":"` + strings.Repeat("x", 1<<20) + `"}` + "\n"), "too long"},
		{"an unknown op", []byte(`{"op":"explode"}` + "\n"), "explode"},
		{"not an object", []byte("[1,2,3]\n"), "bad admin request"},
		{"an empty line", []byte("\n"), "bad admin request"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := lastAnswer(t, path, tt.raw)
			require.Contains(t, resp.Error, tt.want)
		})
	}
	// A request cut short by a half-close, without its "\n", is answered.
	resp := lastAnswer(t, path, []byte(`{"op":"status"}`))
	require.Empty(t, resp.Error)
	require.Len(t, resp.Status, 1)
}

// A client that asks for an upgrade and never reads its progress cannot
// hold the upgrade (and the machines it suspends): the progress it does
// not read is dropped and the upgrade ends; the next client is served.
func TestAdminClientNeverReads(t *testing.T) {
	_, h := newRelease(t)
	startN(t, h, 2000) // progress lines beyond the socket's buffers
	path := serveAdminSocket(t, h)
	c, err := net.Dial("unix", path)
	require.NoError(t, err)
	defer func() { require.NoError(t, c.Close()) }()
	require.NoError(t, c.(*net.UnixConn).SetReadBuffer(1024))
	_, err = c.Write([]byte(`{"op":"upgrade","machine":"counter","to":"v2","strategy":{"name":"rolling"}}` + "\n"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return counts(status(t, h))["v2"] == 2000 }, 60*time.Second, 10*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ac, err := upgrade.DialAdmin(ctx, path)
	require.NoError(t, err)
	st, err := ac.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, "v2", st[0].Current)
}

// Thousands of connections opened and dropped (at once, mid-line, after
// a request) leave the admin server serving, with the goroutines it had.
func TestAdminManyConnections(t *testing.T) {
	_, h := newRelease(t)
	startN(t, h, 1)
	path := serveAdminSocket(t, h)
	base := runtime.NumGoroutine()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range 2000 {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := net.Dial("unix", path)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			switch i % 3 {
			case 1:
				_, err = c.Write([]byte(`{"op":"sta`))
			case 2:
				_, err = c.Write([]byte(`{"op":"status"}` + "\n"))
				if err == nil {
					_, err = bufio.NewReader(c).ReadString('\n')
				}
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	require.Eventually(t, func() bool { return runtime.NumGoroutine() <= base+4*runtime.GOMAXPROCS(0) }, 30*time.Second, 10*time.Millisecond,
		"goroutines: %d before, %d after", base, runtime.NumGoroutine())
	resp := lastAnswer(t, path, []byte(`{"op":"status"}`+"\n"))
	require.Empty(t, resp.Error)
}
