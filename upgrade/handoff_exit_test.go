package upgrade

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/supervisor"
)

// The machines handed over are stopped on purpose, with ErrHandedOff: the
// old process's System does not log their exits (one line per machine,
// before), their monitors and links learn the reason, and a supervisor
// does not restart a child of any restart type (it restarted a transient
// one after Killed, and would restart a permanent one after Shutdown).
func TestHandoffStopsMachinesHandedOver(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "handoff")
	var sysLog logBuffer
	sys := actor.NewSystem(actor.WithLogger(slog.New(slog.NewTextHandler(&sysLog, nil))))
	t.Cleanup(func() { require.NoError(t, sys.Shutdown(context.Background())) })
	old := &side{f: newFakeFlip(), sys: sys}
	old.r, old.log = testRestarter(t, old.f)
	h, err := NewHandoff(old.r, sys, WithHandoffDir(dir), WithHandoffTimeout(5*time.Second), WithCodes(sessionCode("v1")))
	require.NoError(t, err)
	h.cfg.parentPID = func() int { return 0 }
	h.cfg.successor = selfIsSuccessor
	old.h = h
	require.NoError(t, old.r.Ready())

	start := func(sc supervisor.StartContext) (actor.Ref, error) {
		return fsm.Start(ctx, sc.System(), sessionCode("v1"), fsm.WithID(sc.ID()), fsm.WithSpawnOptions(actor.LinkTo(sc.Supervisor())))
	}
	restarts := map[string]supervisor.Restart{"temp": supervisor.Temporary, "trans": supervisor.Transient, "perm": supervisor.Permanent}
	var specs []supervisor.ChildSpec
	for _, id := range []string{"temp", "trans", "perm"} {
		specs = append(specs, supervisor.ChildSpec{ID: id, Restart: restarts[id], Start: start})
	}
	sup, err := supervisor.Start(sys, supervisor.OneForOne, specs, supervisor.WithIntensity(100, time.Minute))
	require.NoError(t, err)
	children, err := supervisor.WhichChildren(ctx, sup)
	require.NoError(t, err)
	refs := map[string]actor.Ref{}
	downs := map[string]<-chan actor.Down{}
	for _, ch := range children {
		refs[ch.ID] = ch.Ref
		require.NoError(t, old.h.Manage(ch.ID, ch.Ref))
	}
	// A machine outside any supervisor, monitored.
	lone, err := fsm.Start(ctx, sys, sessionCode("v1"))
	require.NoError(t, err)
	refs["lone"] = lone
	require.NoError(t, old.h.Manage("lone", lone))
	for id, ref := range refs {
		downs[id] = monitorOnce(t, sys, ref)
	}

	reply, done := old.upgrade(t)
	nw := successorOf(t, old, dir, WithCodes(sessionCode("v1")))
	got, err := nw.h.Receive(ctx)
	require.NoError(t, err)
	require.Len(t, got.Machines, 4)
	reply <- nil
	require.NoError(t, <-done)

	for id, ref := range refs {
		reason, err := actor.Wait(ctx, ref)
		require.NoError(t, err)
		require.ErrorIs(t, reason, ErrHandedOff, id)
		require.ErrorIs(t, reason, actor.Moved, "%s: not to be restarted", id)
		require.ErrorIs(t, reason, actor.Shutdown, "%s: an orderly stop", id)
		require.ErrorIs(t, reason, actor.Killed, "%s: no terminate hook, as before", id)
		d := <-downs[id]
		require.ErrorIs(t, d.Reason, ErrHandedOff, "%s: its monitor is told why", id)
	}
	// Twice: the exits are queued by the first call's time.
	_, err = supervisor.WhichChildren(ctx, sup)
	require.NoError(t, err)
	children, err = supervisor.WhichChildren(ctx, sup)
	require.NoError(t, err)
	for _, ch := range children {
		require.NotEqual(t, supervisor.Running, ch.Status, "%s restarted in the old process", ch.ID)
		require.True(t, ch.Ref.IsZero(), ch.ID)
	}
	require.NotContains(t, sysLog.String(), "actor: exited")
	require.Contains(t, old.log.String(), "upgrade: handoff: state handed over")
	require.Contains(t, old.log.String(), "machines=4")
	for _, c := range got.Conns {
		require.NoError(t, c.Conn.Close())
	}
}

// monitorOnce returns the channel on which the Down of ref arrives, from
// an actor that monitors it and stops.
func monitorOnce(t *testing.T, sys *actor.System, ref actor.Ref) <-chan actor.Down {
	t.Helper()
	downs := make(chan actor.Down, 1)
	mon, err := sys.Spawn(actor.BehaviorFunc(func(c *actor.Context, msg any) {
		switch m := msg.(type) {
		case actor.Ref:
			c.Monitor(m)
			c.Reply(nil)
		case actor.Down:
			downs <- m
			c.Stop(nil)
		}
	}))
	require.NoError(t, err)
	_, err = actor.Call(context.Background(), mon, ref)
	require.NoError(t, err)
	return downs
}
