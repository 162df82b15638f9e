package fsm_test

import (
	"context"
	"errors"
	"testing"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/actor/actortest"
	"github.com/hotline-go/hotline/fsm"
	"github.com/stretchr/testify/require"
)

// loads counts the Loads of a version's code: a stand-in for a wrapper.
type loads struct {
	fsm.Code
	n int
}

func (l *loads) Load(ctx context.Context, state string, data []byte) (fsm.Instance, error) {
	l.n++
	return l.Code.Load(ctx, state, data)
}

func TestReload(t *testing.T) {
	ctx := context.Background()
	sys := actortest.NewSystem(t)
	ref := start(t, sys, phoneV1(), fsm.WithID("555-0100"))
	cast(t, ref, KeyPressed{1}, KeyPressed{2}, Answered{}, AudioReceived{10})
	before := status(t, ref)

	w := &loads{Code: phoneV1()}
	require.NoError(t, fsm.ChangeCode(ctx, ref, w, fsm.Reload()))
	require.Equal(t, 1, w.n, "the data goes through the new Code's Load")
	require.Equal(t, before, status(t, ref), "same version, same state and data")
	require.Equal(t, "v1", info(t, ref).Version)

	// Without Reload, the same version is refused; with it, another is.
	err := fsm.ChangeCode(ctx, ref, phoneV1())
	require.ErrorIs(t, err, fsm.ErrSameVersion)
	err = fsm.ChangeCode(ctx, ref, phoneV2(), fsm.Reload())
	var ue *fsm.UpgradeError
	require.True(t, errors.As(err, &ue), "%v", err)
	require.ErrorContains(t, err, "reload needs a code of version v1")

	// Revert undoes a reload.
	require.NoError(t, actor.Suspend(ctx, ref))
	require.NoError(t, fsm.ChangeSuspended(ctx, ref, &loads{Code: phoneV1()}, fsm.Reload()))
	require.NoError(t, fsm.Revert(ctx, ref))
	require.NoError(t, actor.Resume(ctx, ref))
	require.Equal(t, before, status(t, ref))
}

func TestStartIdentity(t *testing.T) {
	tags := map[string]string{"cohort": "beta"}
	id, got := fsm.StartIdentity(fsm.WithID("a"), fsm.WithTags(tags))
	require.Equal(t, "a", id)
	require.Equal(t, tags, got)
	got["cohort"] = "x"
	require.Equal(t, "beta", tags["cohort"], "a copy")
	id, got = fsm.StartIdentity()
	require.Empty(t, id)
	require.Empty(t, got)
}
