package upgrade

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A handoff waits up to acceptGrace in all for the connections its
// listeners had just returned, however many listeners there are: each
// listener's wait counted its own grace, so two listeners whose accept
// loops were slow to come back stalled the handoff's pause for two graces.
func TestHoldListenersGraceIsShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ready := make(chan struct{})
		close(ready)
		r := &Restarter{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		setUp := make(chan struct{})
		var gots []<-chan net.Conn
		var ends []net.Conn
		for range 2 {
			fake := newChanListener()
			l := newListener(fake, ready)
			r.listeners = append(r.listeners, l)
			got := acceptLoop(l, setUp)
			a, b := net.Pipe()
			fake.conns <- a
			<-got // out, and its loop never comes back while the hold waits
			gots = append(gots, got)
			ends = append(ends, a, b)
		}

		t0 := time.Now()
		ls := r.holdListeners()
		assert.Equal(t, acceptGrace, time.Since(t0), "the handoff's wait for two listeners")

		for _, l := range ls {
			l.release()
			require.NoError(t, l.Close())
		}
		close(setUp)
		for _, got := range gots {
			for range got {
			}
		}
		for _, c := range ends {
			require.NoError(t, c.Close())
		}
	})
}
