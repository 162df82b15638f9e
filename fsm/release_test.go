package fsm_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/actor/actortest"
	"github.com/hotline-go/hotline/fsm"
)

// closingCode wraps a Code so that its instances are io.Closers, and counts
// what the runtime closes.
type closingCode struct {
	fsm.Code
	log *closeLog
}

// closeLog is shared by the versions of one test: the instances made, by
// version, and how often each was closed.
type closeLog struct {
	mu    sync.Mutex
	made  []*closingInstance
	enter error // if set, the enter handler of new instances fails with it
}

type closingInstance struct {
	fsm.Instance
	version string
	log     *closeLog
	closes  int
}

func (in *closingInstance) Enter(prev string) ([]fsm.Action, error) {
	if err := in.log.enter; err != nil {
		return nil, err
	}
	return in.Instance.Enter(prev)
}

func (in *closingInstance) Close() error {
	in.log.mu.Lock()
	defer in.log.mu.Unlock()
	in.closes++
	return nil
}

// open returns the versions of the instances not closed, and fails the
// test if one was closed twice.
func (l *closeLog) open(t *testing.T) []string {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var open []string
	for _, in := range l.made {
		require.LessOrEqual(t, in.closes, 1, "instance of %s closed %d times", in.version, in.closes)
		if in.closes == 0 {
			open = append(open, in.version)
		}
	}
	return open
}

func (c closingCode) wrap(in fsm.Instance, err error) (fsm.Instance, error) {
	if err != nil {
		return nil, err
	}
	ci := &closingInstance{Instance: in, version: c.Version(), log: c.log}
	c.log.mu.Lock()
	c.log.made = append(c.log.made, ci)
	c.log.mu.Unlock()
	return ci, nil
}

func (c closingCode) New(ctx context.Context, id string) (fsm.Instance, error) {
	return c.wrap(c.Code.New(ctx, id))
}

func (c closingCode) Load(ctx context.Context, state string, data []byte) (fsm.Instance, error) {
	return c.wrap(c.Code.Load(ctx, state, data))
}

func (c closingCode) Upgrade(ctx context.Context, from, state string, data []byte) (fsm.Instance, error) {
	return c.wrap(c.Code.Upgrade(ctx, from, state, data))
}

func (c closingCode) Downgrade(ctx context.Context, to string, in fsm.Instance) (string, []byte, error) {
	return c.Code.Downgrade(ctx, to, in.(*closingInstance).Instance)
}

func TestInstanceClosedWhenDropped(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) (*actor.System, *closeLog, fsm.Code, fsm.Code) {
		l := &closeLog{}
		return actortest.NewSystem(t), l, closingCode{recorderV1(), l}, closingCode{recorderV2(), l}
	}
	t.Run("machine stops", func(t *testing.T) {
		sys, l, v1, _ := setup(t)
		ref, err := fsm.Start(ctx, sys, v1)
		require.NoError(t, err)
		require.Equal(t, []string{"v1"}, l.open(t))
		require.NoError(t, actor.Stop(ctx, ref, actor.Normal))
		require.Empty(t, l.open(t))
	})
	t.Run("changed code is closed once it cannot be reverted", func(t *testing.T) {
		sys, l, v1, v2 := setup(t)
		ref, err := fsm.Start(ctx, sys, v1)
		require.NoError(t, err)
		require.NoError(t, fsm.ChangeCode(ctx, ref, v2))
		require.Equal(t, []string{"v1", "v2"}, l.open(t), "v1 is kept for a Revert")
		require.NoError(t, fsm.Cast(ref, RecV2{S: "x"}))
		require.NoError(t, fsm.Sync(ctx, ref))
		require.Equal(t, []string{"v2"}, l.open(t))
		require.NoError(t, actor.Stop(ctx, ref, actor.Normal))
		require.Empty(t, l.open(t))
	})
	t.Run("two changes in a row", func(t *testing.T) {
		sys, l, v1, v2 := setup(t)
		ref, err := fsm.Start(ctx, sys, v1)
		require.NoError(t, err)
		require.NoError(t, fsm.ChangeCode(ctx, ref, v2))
		require.NoError(t, fsm.ChangeCode(ctx, ref, v1, fsm.AsDowngrade()))
		require.Equal(t, []string{"v2", "v1"}, l.open(t), "the first v1 can no longer be put back")
		require.NoError(t, actor.Stop(ctx, ref, actor.Normal))
		require.Empty(t, l.open(t))
	})
	t.Run("reload after a change closes the change's old instance", func(t *testing.T) {
		sys, l, v1, v2 := setup(t)
		ref, err := fsm.Start(ctx, sys, v1)
		require.NoError(t, err)
		require.NoError(t, fsm.ChangeCode(ctx, ref, v2))
		require.NoError(t, fsm.ChangeCode(ctx, ref, v2, fsm.Reload()))
		require.Equal(t, []string{"v2", "v2"}, l.open(t), "v1 can no longer be put back; the v2 before the reload can")
		require.NoError(t, actor.Stop(ctx, ref, actor.Normal))
		require.Empty(t, l.open(t))
	})
	t.Run("revert closes the new instance", func(t *testing.T) {
		sys, l, v1, v2 := setup(t)
		ref, err := fsm.Start(ctx, sys, v1)
		require.NoError(t, err)
		require.NoError(t, actor.Suspend(ctx, ref))
		require.NoError(t, fsm.ChangeSuspended(ctx, ref, v2))
		require.NoError(t, fsm.Revert(ctx, ref))
		require.NoError(t, actor.Resume(ctx, ref))
		require.Equal(t, []string{"v1"}, l.open(t))
		require.NoError(t, actor.Stop(ctx, ref, actor.Normal))
		require.Empty(t, l.open(t))
	})
	t.Run("failed change closes the instance it made", func(t *testing.T) {
		sys, l, v1, v2 := setup(t)
		ref, err := fsm.Start(ctx, sys, v1)
		require.NoError(t, err)
		require.NoError(t, fsm.Cast(ref, Move{To: "held"}))
		require.NoError(t, fsm.Cast(ref, Rec{N: -1})) // postponed; v2 cannot convert it
		require.NoError(t, fsm.Sync(ctx, ref))
		require.Error(t, fsm.ChangeCode(ctx, ref, v2))
		require.Equal(t, []string{"v1"}, l.open(t))
		require.NoError(t, actor.Stop(ctx, ref, actor.Normal))
		require.Empty(t, l.open(t))
	})
	t.Run("failed start closes the instance", func(t *testing.T) {
		sys, l, v1, _ := setup(t)
		l.enter = errors.New("no")
		_, err := fsm.Start(ctx, sys, v1)
		require.Error(t, err)
		require.Len(t, l.made, 1)
		require.Empty(t, l.open(t))
	})
	t.Run("failed start from an image closes the instance", func(t *testing.T) {
		sys, l, v1, _ := setup(t)
		img := fsm.Image{Snapshot: fsm.Snapshot{Machine: "recorder", Version: "v1", State: "open", Data: []byte{0x90}},
			Postponed: []fsm.EventImage{{Name: "Nope"}}} // closingCode decodes no event
		_, err := fsm.Start(ctx, sys, v1, fsm.FromImage(img))
		require.Error(t, err)
		require.Len(t, l.made, 1)
		require.Empty(t, l.open(t))
	})
}
