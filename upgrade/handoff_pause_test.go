package upgrade

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/fsm"
)

// registeringSide is a served process whose connection c1 has not
// registered yet (no owner) when the handoff begins: a request in hand
// when its Pause is called registers it, as a phone's REGISTER that
// finishes during the pause would. That request starts and manages machine
// m1, and adopts c1 again owned by it; meanwhile the service adopts c2 (a
// connection accepted in the instant of the hold) and releases c3 (closed
// by its peer). It returns the side, and the server ends of c2 and c3, and
// how many times c2 was paused and the connections resumed.
type registeringSide struct {
	*side
	c2, c3         net.Conn
	c2Paused       atomic.Int32
	resumed        atomic.Int32
	c1Conn, c3Conn Conn
}

func newRegisteringSide(t *testing.T, dir string) *registeringSide {
	t.Helper()
	s := &registeringSide{side: newSide(t, dir, false, WithCodes(sessionCode("v1")))}
	require.NoError(t, s.r.Ready())
	_, c1 := tcpPair(t)
	_, s.c2 = tcpPair(t)
	_, s.c3 = tcpPair(t)
	resume := func() { s.resumed.Add(1) }
	c2 := Conn{Conn: s.c2, Meta: []byte("c2"), Resume: resume,
		Pause: func(context.Context) ([]byte, error) { s.c2Paused.Add(1); return nil, nil }}
	s.c3Conn = Conn{Conn: s.c3, Meta: []byte("c3"), Resume: resume,
		Pause: func(context.Context) ([]byte, error) { return nil, nil }}
	var registered atomic.Bool
	s.c1Conn = Conn{Conn: c1, Meta: []byte("unregistered"), Resume: resume,
		Pause: func(ctx context.Context) ([]byte, error) {
			if registered.Swap(true) {
				return []byte("KEY 1\n"), nil
			}
			// The request in hand finishes: the line registers.
			ref, err := fsm.Start(ctx, s.sys, sessionCode("v1"))
			if err != nil {
				return nil, err
			}
			if _, err := fsm.Call(ctx, ref, Line{Text: "registered"}); err != nil {
				return nil, err
			}
			owned := s.c1Conn
			owned.Owner, owned.Meta = "m1", []byte("m1")
			s.h.Release("c1")
			err = errors.Join(s.h.Manage("m1", ref), s.h.Adopt("c1", owned), s.h.Adopt("c2", c2))
			s.h.Release("c3")
			return []byte("KEY 1\n"), err
		}}
	require.NoError(t, s.h.Adopt("c1", s.c1Conn))
	require.NoError(t, s.h.Adopt("c3", s.c3Conn))
	return s
}

// What a request in hand registers while the handoff pauses the
// connections travels: the machine it made, its connection with its new
// owner, a connection adopted meanwhile (paused in turn); one released
// meanwhile stays here.
func TestHandoffRegistrationDuringPause(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "handoff")
	old := newRegisteringSide(t, dir)
	reply, done := old.upgrade(t)

	nw := successorOf(t, old.side, dir, WithCodes(sessionCode("v1")))
	got, err := nw.h.Receive(context.Background())
	require.NoError(t, err)
	require.Contains(t, got.Machines, "m1", "the machine managed during the pause travels")
	v, err := fsm.Call(context.Background(), got.Machines["m1"], Line{Text: "after"})
	require.NoError(t, err)
	require.Regexp(t, `^2 \d+ v1 after$`, v, "with its data")
	require.Len(t, got.Conns, 2, "c1 and c2; c3 was released")
	c1 := got.Conns["c1"]
	require.Equal(t, "m1", c1.Owner, "c1 travels owned by the machine it registered")
	require.Equal(t, []byte("m1"), c1.Meta)
	require.Equal(t, []byte("KEY 1\n"), c1.Unread)
	require.Equal(t, []byte("c2"), got.Conns["c2"].Meta)
	require.Equal(t, int32(1), old.c2Paused.Load(), "c2, adopted during the pause, was paused before it was sent")
	for _, rc := range got.Conns {
		require.NoError(t, rc.Conn.Close())
	}

	reply <- nil // the new process is ready
	require.NoError(t, <-done)
	require.Zero(t, old.resumed.Load())
	_, ok := old.h.Machine("m1")
	require.False(t, ok, "sent, so forgotten here")
	_, err = old.c3.Write([]byte("x"))
	require.NoError(t, err, "c3 was released, not handed over: it stays open here")
	require.NoError(t, old.c3.Close())
	require.Contains(t, old.log.String(), "adopted during the pause were paused in turn")
}

// A handoff that fails after such a pause resumes every connection it
// paused, the one released meanwhile too, and the machine made during the
// pause runs on here.
func TestHandoffRegistrationDuringPauseResumed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "handoff")
	old := newRegisteringSide(t, dir)
	reply, done := old.upgrade(t)

	nw := successorOf(t, old.side, dir, WithCodes(sessionCode("v1")))
	got, err := nw.h.Receive(context.Background())
	require.NoError(t, err)
	for _, rc := range got.Conns {
		require.NoError(t, rc.Conn.Close()) // the new process dies
	}
	reply <- errors.New("child 42 exited") // before Ready
	require.Error(t, <-done)

	require.Equal(t, int32(3), old.resumed.Load(), "c1, c2 and the released c3")
	ref, ok := old.h.Machine("m1")
	require.True(t, ok)
	v, err := fsm.Call(context.Background(), ref, Line{Text: "here"})
	require.NoError(t, err)
	require.Regexp(t, `^2 \d+ v1 here$`, v)
}
