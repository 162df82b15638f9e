package pluginrpc

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkPluginRoundTripWork is BenchmarkPluginRoundTrip/1 with a
// handler that is busy for the given µs before it answers: how the round
// trip grows with the plugin's work.
func BenchmarkPluginRoundTripWork(b *testing.B) {
	c, _ := testClient(b, "echo", WithLogger(slog.New(slog.DiscardHandler)), WithConns(benchConns(b)))
	ctx := context.Background()
	require.NoError(b, c.Start(ctx))
	body := make([]byte, eventBody)
	for _, us := range []int{0, 2, 5, 10, 20} {
		b.Run(fmt.Sprintf("work=%dus", us), func(b *testing.B) {
			key := fmt.Sprintf("machine/%d", us)
			for b.Loop() {
				if _, err := c.Call(ctx, key, "work-echo", body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
