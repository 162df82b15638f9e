package actortest_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/actor/actortest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestProbe(t *testing.T) {
	s := actortest.NewSystem(t)
	p := actortest.NewProbe(t, s)
	p.TrapExits()
	require.NoError(t, actor.Send(p.Ref(), "hello"))
	p.Expect("hello")

	boom := errors.New("boom")
	child, err := s.Spawn(actor.BehaviorFunc(func(c *actor.Context, _ any) { c.Stop(boom) }), actor.LinkTo(p.Ref()))
	require.NoError(t, err)
	require.NoError(t, actor.Send(child, "go"))
	require.ErrorIs(t, actortest.Wait(t, child), boom)
	e, ok := p.Next().(actor.Exit)
	require.True(t, ok)
	require.Equal(t, child, e.From)
	require.Equal(t, 0, p.Len())
}
