package pluginrpc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/hotline-go/hotline/internal/pluginrpc"
)

// The host side: start a plugin, check what it serves, and call it. Here
// the test binary is the plugin (its TestMain serves the "echo" machine
// when a host starts it).
func Example() {
	exe, err := os.Executable()
	if err != nil {
		fmt.Println(err)
		return
	}
	// The checksum should come from where the binary was built, not from
	// the binary itself; this example has no other source.
	sum, err := pluginrpc.FileChecksum(exe)
	if err != nil {
		fmt.Println(err)
		return
	}
	c := pluginrpc.New(exe, sum,
		pluginrpc.WithName("echo-plugin"),
		pluginrpc.WithMachine("echo"),
		pluginrpc.WithLogger(slog.New(slog.DiscardHandler)))
	defer func() { _ = c.Close() }()

	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Manifest().Machine, c.Manifest().Versions)

	out, err := c.Do(ctx, "machine-1", "upper", []byte("hello"))
	fmt.Println(string(out), err)

	_, err = c.Do(ctx, "machine-1", "panic", []byte("boom"))
	var p *pluginrpc.PanicError
	fmt.Println(errors.As(err, &p), err)
	// Output:
	// echo [v1 v2]
	// HELLO <nil>
	// true pluginrpc: plugin echo-plugin: handler panicked: boom
}

// The plugin side: the whole main of a plugin binary. Run by hand rather
// than by a host, Serve says so.
func ExampleServe() {
	m := pluginrpc.Manifest{Machine: "echo", Versions: []string{"v1"}}
	err := pluginrpc.Serve(m, func(ctx context.Context, key, method string, body []byte) ([]byte, error) {
		switch method {
		case "upper":
			return bytes.ToUpper(body), nil
		}
		return nil, fmt.Errorf("no method %q", method)
	})
	if errors.Is(err, pluginrpc.ErrNotLaunched) {
		fmt.Println("this is a Hotline plugin: a Hotline host starts it")
	}
	// Output: this is a Hotline plugin: a Hotline host starts it
}

// A Loader shares one process among the users of a binary, and stops it
// when the last one lets go.
func ExampleLoader() {
	exe, err := os.Executable()
	if err != nil {
		fmt.Println(err)
		return
	}
	sum, err := pluginrpc.FileChecksum(exe)
	if err != nil {
		fmt.Println(err)
		return
	}
	l := pluginrpc.NewLoader(pluginrpc.WithLogger(slog.New(slog.DiscardHandler)))
	defer func() { _ = l.Close() }()

	ctx := context.Background()
	a, err := l.Load(ctx, exe, sum)
	if err != nil {
		fmt.Println(err)
		return
	}
	b, err := l.Load(ctx, exe, sum)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("one process:", a.Client() == b.Client(), l.Loaded())
	_ = a.Release()
	fmt.Println("still loaded:", l.Loaded())
	_ = b.Release()
	fmt.Println("unloaded:", l.Loaded())
	// Output:
	// one process: true 1
	// still loaded: 1
	// unloaded: 0
}

// A pool of three event connections to the plugin process: the calls of
// one machine always take the same connection, in order (the test plugin's
// "incr" counts a machine's calls), and machines busy at once spread over
// the pool, which the plugin serves on as many goroutines.
func ExampleWithConns() {
	exe, err := os.Executable()
	if err != nil {
		fmt.Println(err)
		return
	}
	sum, err := pluginrpc.FileChecksum(exe)
	if err != nil {
		fmt.Println(err)
		return
	}
	c := pluginrpc.New(exe, sum, pluginrpc.WithConns(3),
		pluginrpc.WithLogger(slog.New(slog.DiscardHandler)))
	defer func() { _ = c.Close() }()

	ctx := context.Background()
	var wg sync.WaitGroup
	counts := make([][]byte, 4)
	for m := range counts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				out, err := c.Do(ctx, fmt.Sprintf("machine-%d", m), "incr", nil)
				if err != nil {
					fmt.Println(err)
					return
				}
				counts[m] = append(counts[m], out...)
			}
		}()
	}
	wg.Wait()
	for m, n := range counts {
		fmt.Printf("machine-%d: %s\n", m, n)
	}
	// Output:
	// machine-0: 12345
	// machine-1: 12345
	// machine-2: 12345
	// machine-3: 12345
}
