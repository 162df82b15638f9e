package exchange_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/examples/phoneswitch/exchange"
	"github.com/hotline-go/hotline/examples/phoneswitch/phone"
	"github.com/hotline-go/hotline/examples/phoneswitch/protocol"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/supervisor"
	"github.com/hotline-go/hotline/upgrade"
	"github.com/stretchr/testify/require"
)

func TestProtocolErrors(t *testing.T) {
	_, addr := start(t)
	other := phoneOn(t, addr, "5550")
	c := dial(t, addr)
	tests := []struct{ send, want string }{
		{"OFFHOOK", "ERR not-registered"},
		{"STATUS", "ERR not-registered"},
		{"HELLO", "ERR unknown-command"},
		{"", "ERR unknown-command"},
		{"KEY", "ERR bad-args"},
		{"REGISTER 12", "ERR bad-number"},
		{"REGISTER 123456789", "ERR bad-number"},
		{"REGISTER 12a4", "ERR bad-number"},
		{"REGISTER 5550", "ERR number-taken"},
		{strings.Repeat("X", 5000), "ERR line-too-long"},
		{"REGISTER 5551", "OK REGISTERED 5551"},
		{"REGISTER 5552", "ERR already-registered"},
		{"AUDIO 1 x", "ERR no-call"},
		{"AUDIO x x", "ERR bad-args"},
		{"KEY 1", "ERR wrong-state"},
		{"STATUS", "STATUS 5551 off v1 calls=0 frames_in=0 frames_out=0"},
		{"ONHOOK", "ONHOOK"},
		{"OFFHOOK", "DIALTONE"},
		{"KEY #", "BUSY unknown"},
		{"STATUS", "STATUS 5551 disconnecting v1 calls=0 frames_in=0 frames_out=0"},
		{"ONHOOK", "ONHOOK"},
		{"OFFHOOK", "DIALTONE"},
	}
	for _, tt := range tests {
		c.do(tt.send, tt.want)
	}
	c.send("KEY 9", "KEY 9", "KEY 9")
	c.do("KEY #", "BUSY unknown")
	c.do("ONHOOK", "ONHOOK")
	other.do("STATUS", "STATUS 5550 off v1 calls=0 frames_in=0 frames_out=0")
}

// phones returns how many phone machines the supervisor has and how many
// the release handler tracks on version.
func phones(t *testing.T, s *exchange.Switch, rh *upgrade.ReleaseHandler, version string) (supervised, tracked int) {
	t.Helper()
	cs, err := supervisor.WhichChildren(context.Background(), exchange.Supervisor(s))
	require.NoError(t, err)
	for _, ms := range rh.Status() {
		for _, v := range ms.Versions {
			if ms.Machine == phone.Name && v.Version == version {
				tracked = v.Machines
			}
		}
	}
	return len(cs), tracked
}

func TestCallAndClose(t *testing.T) {
	s, rh, addr := startRelease(t, []fsm.Code{phone.V1(), phone.V2()})
	a, b, c := phoneOn(t, addr, "100"), phoneOn(t, addr, "200"), phoneOn(t, addr, "300")
	call(a, b, "200", "100")
	c.do("OFFHOOK", "DIALTONE")
	c.send("KEY 2", "KEY 0", "KEY 0")
	c.do("KEY #", "BUSY busy")
	a.send("AUDIO 1 hi")
	b.expect("AUDIO 1 hi")
	a.do("STATUS", "STATUS 100 in_progress v1 peer=200 dir=out calls=1 frames_in=0 frames_out=1")
	require.Equal(t, 3, s.Status().Phones)
	sup, tracked := phones(t, s, rh, "v1")
	require.Equal(t, []int{3, 3}, []int{sup, tracked}, "every phone supervised and tracked")

	// A closed connection hangs up and unregisters: its machine ends.
	require.NoError(t, a.nc.Close())
	b.expect("HANGUP")
	b.do("ONHOOK", "ONHOOK")
	require.Eventually(t, func() bool { return s.Status().Phones == 2 }, 5*time.Second, time.Millisecond)
	require.Eventually(t, func() bool {
		sup, tracked := phones(t, s, rh, "v1")
		return sup == 2 && tracked == 2
	}, 5*time.Second, time.Millisecond)
	a2 := phoneOn(t, addr, "100")
	a2.do("STATUS", "STATUS 100 off v1 calls=0 frames_in=0 frames_out=0")
}

// Frames stream both ways while every phone moves to v2 and back; none is
// lost, duplicated or reordered, and v2 shows the true connect time.
func TestUpgradeDuringCall(t *testing.T) {
	s, rh, addr := startRelease(t, []fsm.Code{phone.V1(), phone.V2()})
	ctx := context.Background()
	a, b := phoneOn(t, addr, "100"), phoneOn(t, addr, "200")
	call(a, b, "200", "100")

	const frames = 300
	var wg sync.WaitGroup
	for _, p := range []struct{ from, to *client }{{a, b}, {b, a}} {
		wg.Go(func() {
			for i := range frames {
				p.from.send(fmt.Sprintf("AUDIO %d f%d", i, i))
			}
		})
	}
	rep, err := rh.Upgrade(ctx, phone.Name, "v2")
	require.NoError(t, err)
	require.Equal(t, []string{"v1"}, rep.From)
	require.Equal(t, 2, rep.Changed)
	rep, err = rh.Rollback(ctx, phone.Name)
	require.NoError(t, err)
	require.Equal(t, "v1", rep.To)
	rep, err = rh.Upgrade(ctx, phone.Name, "v2", upgrade.WithStrategy(upgrade.Rolling(1)))
	require.NoError(t, err)
	require.Equal(t, 2, rep.Changed)
	wg.Wait()
	for _, c := range []*client{a, b} {
		for i := range frames {
			require.Equal(t, fmt.Sprintf("AUDIO %d f%d", i, i), c.read())
		}
	}
	a.do("STATUS", fmt.Sprintf("STATUS 100 in_progress v2 peer=200 dir=out since=%d calls=1 frames_in=%d frames_out=%d", connectedAt, frames, frames))
	require.Equal(t, exchange.Status{Version: "v2", Phones: 2, Conns: 2}, s.Status())

	// New phones start on v2.
	c := phoneOn(t, addr, "300")
	c.do("STATUS", "STATUS 300 off v2 calls=0 frames_in=0 frames_out=0")

	var m strings.Builder
	require.NoError(t, s.WriteMetrics(&m))
	require.Contains(t, m.String(), "phoneswitch_frames_total 600\n")
	require.Contains(t, m.String(), `phoneswitch_version_info{version="v2"} 1`)
}

func TestNewErrors(t *testing.T) {
	sys := actor.NewSystem()
	defer func() { require.NoError(t, sys.Shutdown(context.Background())) }()
	_, err := exchange.New(sys, nil)
	require.ErrorIs(t, err, exchange.ErrNoRelease)
}

// A phone that never reads is hung up once its queue stays full; its peer
// is told, and the switch's memory for it stays bounded.
func TestSlowConsumer(t *testing.T) {
	_, addr := start(t, exchange.WithWriteQueue(4), exchange.WithStallTimeout(200*time.Millisecond))
	a, b := phoneOn(t, addr, "100"), phoneOn(t, addr, "200")
	call(a, b, "200", "100")
	payload := strings.Repeat("z", protocol.MaxPayload)
	go func() {
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(a.nc, "AUDIO %d %s\n", i, payload); err != nil {
				return
			}
		}
	}()
	// b never reads AUDIO: the switch hangs it up; a hears HANGUP. That
	// takes filling the kernel's socket buffers towards b first (megabytes
	// on loopback), which on a loaded machine under -race can take longer
	// than read's 5 s: the guard here is 30 s.
	for {
		l := a.readWithin(30 * time.Second)
		if l == "HANGUP" {
			break
		}
		require.True(t, strings.HasPrefix(l, "ERR no-call") || l == "HANGUP", l)
	}
	require.NoError(t, a.nc.Close())
}

// exploding is phone v1 whose machine panics on the frame "boom".
type exploding struct{ fsm.Code }

func (e exploding) New(ctx context.Context, id string) (fsm.Instance, error) {
	in, err := e.Code.New(ctx, id)
	return explodingInstance{in}, err
}

type explodingInstance struct{ fsm.Instance }

func (i explodingInstance) Handle(ev fsm.Event) (string, []fsm.Action, error) {
	if a, ok := ev.Payload.(phone.SendAudio); ok && a.Payload == "boom" {
		panic("boom")
	}
	return i.Instance.Handle(ev)
}

// A phone whose machine fails is hung up, and so is its peer: the phones
// supervisor does not restart it (its children are temporary), and the
// number is free again.
func TestMachineCrash(t *testing.T) {
	s, rh, addr := startRelease(t, []fsm.Code{exploding{phone.V1()}})
	a, b := phoneOn(t, addr, "100"), phoneOn(t, addr, "200")
	call(a, b, "200", "100")
	a.do("AUDIO 1 boom", "ERR internal")
	b.expect("HANGUP")
	b.do("ONHOOK", "ONHOOK")
	rest, err := io.ReadAll(a.br) // the switch closes a's line once it is unregistered
	require.NoError(t, err)
	require.Empty(t, rest)
	require.Eventually(t, func() bool { return s.Status().Phones == 1 }, 5*time.Second, time.Millisecond)
	require.Eventually(t, func() bool {
		sup, tracked := phones(t, s, rh, "v1")
		return sup == 1 && tracked == 1 // not restarted
	}, 5*time.Second, time.Millisecond)
	phoneOn(t, addr, "100") // the number is free again
	require.Equal(t, 2, s.Status().Phones)
}
