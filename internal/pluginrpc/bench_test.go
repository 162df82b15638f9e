package pluginrpc

// Benchmarks of the event path, each beside its baselines in one run:
//
//	go test -run '^$' -bench . -benchmem ./internal/pluginrpc/
//
// Every benchmark moves the same payload: about 290 bytes each way.

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/rpc"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

const (
	// rawPayload is the baselines' message: a 4-byte length, then 290
	// bytes.
	rawPayload = 290
	// eventBody makes a wire.Request of about 290 bytes with key
	// "machine-0001" and method "event"; the answer echoes it.
	eventBody = 255
	// callers is the concurrency of the parallel variants.
	callers = 8
	// envSocket names the raw echo server's socket.
	envSocket = "HOTLINE_TEST_SOCKET"
	// envConns, if set, is the size of the pool of event connections in
	// the benchmarks of the event path (WithConns); unset, the default.
	envConns = "HOTLINE_BENCH_CONNS"
)

// benchConns is the pool size that envConns asks for; the default
// (defaultConns) if unset.
func benchConns(b *testing.B) int {
	s, ok := os.LookupEnv(envConns)
	if !ok {
		return defaultConns()
	}
	n, err := strconv.Atoi(s)
	require.NoError(b, err, "%s=%q", envConns, s)
	b.Logf("%s=%d", envConns, n)
	return n
}

// parallel runs op b.N times in total over callers goroutines; op gets the
// goroutine's index.
func parallel(b *testing.B, op func(i int) error) {
	b.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	b.ResetTimer()
	for i := range callers {
		n := b.N / callers
		if i < b.N%callers {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				if err := op(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// BenchmarkUnixSocketBaseline is the floor: a request and its answer over
// a Unix socket between two processes, with nothing else.
func BenchmarkUnixSocketBaseline(b *testing.B) {
	exe, _ := testExe(b)
	path := filepath.Join(shortDir(b), "raw")
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envMode+"=rawecho", envSocket+"="+path)
	stdin, err := cmd.StdinPipe()
	require.NoError(b, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(b, err)
	require.NoError(b, cmd.Start())
	b.Cleanup(func() {
		_ = stdin.Close() // the server exits when its stdin closes
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(b, err, "raw echo server: %q", line)

	roundTrip := func(c net.Conn, buf []byte) error {
		if _, err := c.Write(buf); err != nil {
			return err
		}
		_, err := io.ReadFull(c, buf)
		return err
	}
	dial := func() (net.Conn, []byte) {
		c, err := net.Dial("unix", path)
		require.NoError(b, err)
		buf := make([]byte, 4+rawPayload)
		binary.BigEndian.PutUint32(buf, rawPayload)
		return c, buf
	}
	b.Run("1", func(b *testing.B) {
		c, buf := dial()
		defer func() { _ = c.Close() }()
		b.ReportAllocs()
		defer meterCPU(b, cmd.Process.Pid)()
		for b.Loop() {
			if err := roundTrip(c, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run(fmt.Sprintf("parallel-%d", callers), func(b *testing.B) {
		conns := make([]net.Conn, callers)
		bufs := make([][]byte, callers)
		for i := range conns {
			conns[i], bufs[i] = dial()
			defer func() { _ = conns[i].Close() }()
		}
		b.ReportAllocs()
		defer meterCPU(b, cmd.Process.Pid)()
		parallel(b, func(i int) error { return roundTrip(conns[i], bufs[i]) })
	})
}

// BenchmarkGoPluginBaseline is a bare go-plugin unary call with the same
// payload, over net/rpc and over gRPC.
func BenchmarkGoPluginBaseline(b *testing.B) {
	for _, proto := range []string{"netrpc", "grpc"} {
		exe, _ := testExe(b)
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), envMode+"="+proto+"-echo")
		gp := plugin.NewClient(&plugin.ClientConfig{
			HandshakeConfig:  handshake(1),
			Plugins:          benchPlugins,
			Cmd:              cmd,
			AllowedProtocols: []plugin.Protocol{plugin.ProtocolNetRPC, plugin.ProtocolGRPC},
			Logger:           hclog.NewNullLogger(),
		})
		rpcClient, err := gp.Client()
		require.NoError(b, err)
		raw, err := rpcClient.Dispense("echo")
		require.NoError(b, err)
		var call func() error
		switch proto {
		case "netrpc":
			c := raw.(*rpc.Client)
			payload := make([]byte, rawPayload)
			call = func() error {
				var reply []byte
				return c.Call("Plugin.Echo", payload, &reply)
			}
		case "grpc":
			c := raw.(*grpc.ClientConn)
			in := &wrapperspb.BytesValue{Value: make([]byte, rawPayload-3)} // 290 bytes of protobuf
			call = func() error {
				return c.Invoke(context.Background(), "/hotline.bench.Echo/Echo", in, new(wrapperspb.BytesValue))
			}
		}
		b.Run(proto, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := call(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("%s-parallel-%d", proto, callers), func(b *testing.B) {
			b.ReportAllocs()
			parallel(b, func(int) error { return call() })
		})
		gp.Kill()
	}
}

// BenchmarkPluginRoundTrip is a call through this package's transport:
// Client.Call to the test plugin's echo handler, with a request of about
// 290 bytes of msgpack.
func BenchmarkPluginRoundTrip(b *testing.B) {
	c, _ := testClient(b, "echo", WithLogger(slog.New(slog.DiscardHandler)), WithConns(benchConns(b)))
	ctx := context.Background()
	require.NoError(b, c.Start(ctx))
	body := make([]byte, eventBody)
	b.Run("1", func(b *testing.B) {
		b.ReportAllocs()
		defer meterCPU(b, c.Stats().PID)()
		for b.Loop() {
			if _, err := c.Call(ctx, "machine-0001", "event-echo", body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run(fmt.Sprintf("parallel-%d", callers), func(b *testing.B) {
		keys := make([]string, callers)
		for i := range keys {
			keys[i] = fmt.Sprintf("machine-%04d", i)
		}
		b.ReportAllocs()
		defer meterCPU(b, c.Stats().PID)()
		parallel(b, func(i int) error {
			_, err := c.Call(ctx, keys[i], "event-echo", body)
			return err
		})
	})
}

// BenchmarkPluginStart is a plugin's start, from the process's start
// (checksum verified before, on the test binary of some MB) to its first
// answer.
func BenchmarkPluginStart(b *testing.B) {
	exe, sum := testExe(b)
	dir := shortDir(b)
	ctx := context.Background()
	info, err := os.Stat(exe)
	require.NoError(b, err)
	b.ReportMetric(float64(info.Size())/(1<<20), "binary-MB")
	for b.Loop() {
		c := New(exe, sum, WithSocketDir(dir), WithLogger(slog.New(slog.DiscardHandler)), withEnv(pluginEnvFor("echo")...))
		if _, err := c.Call(ctx, "k", "echo", nil); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		require.NoError(b, c.Close())
		b.StartTimer()
	}
}

// The baselines' plugins.

var benchPlugins = plugin.PluginSet{"echo": &echoPlugin{}}

// echoPlugin serves Echo over net/rpc and over gRPC.
type echoPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (*echoPlugin) Server(*plugin.MuxBroker) (any, error) { return &echoServer{}, nil }

func (*echoPlugin) Client(_ *plugin.MuxBroker, c *rpc.Client) (any, error) { return c, nil }

func (*echoPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	s.RegisterService(&echoDesc, struct{}{})
	return nil
}

func (*echoPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return c, nil
}

type echoServer struct{}

func (*echoServer) Echo(in []byte, out *[]byte) error {
	*out = in
	return nil
}

// echoDesc is a gRPC service written by hand (no generated code): one
// unary method whose messages are BytesValue.
var echoDesc = grpc.ServiceDesc{
	ServiceName: "hotline.bench.Echo",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Echo",
		Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.BytesValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			return in, nil
		},
	}},
}

// benchPluginMain is the main of the baselines' plugin processes.
func benchPluginMain(mode string) error {
	switch mode {
	case "rawecho":
		return rawEchoMain(os.Getenv(envSocket))
	case "netrpc-echo":
		plugin.Serve(&plugin.ServeConfig{HandshakeConfig: handshake(1), Plugins: benchPlugins,
			Logger: hclog.NewNullLogger()})
	case "grpc-echo":
		plugin.Serve(&plugin.ServeConfig{HandshakeConfig: handshake(1), Plugins: benchPlugins,
			GRPCServer: plugin.DefaultGRPCServer, Logger: hclog.NewNullLogger()})
	}
	return nil
}

// rawEchoMain echoes length-prefixed messages on every connection to a
// Unix socket at path, until its stdin closes.
func rawEchoMain(path string) error {
	l, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		_ = l.Close()
		os.Exit(0)
	}()
	fmt.Println("ready")
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer func() { _ = c.Close() }()
			buf := make([]byte, 64<<10)
			for {
				if _, err := io.ReadFull(c, buf[:4]); err != nil {
					return
				}
				n := binary.BigEndian.Uint32(buf)
				if _, err := io.ReadFull(c, buf[4:4+n]); err != nil {
					return
				}
				if _, err := c.Write(buf[:4+n]); err != nil {
					return
				}
			}
		}()
	}
}
