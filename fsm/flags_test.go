package fsm_test

import (
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor/actortest"
	"github.com/hotline-go/hotline/flags"
	"github.com/hotline-go/hotline/fsm"
)

// AskFlag is a call whose reply says whether the flag named is on.
type AskFlag struct{ Flag string }

// gated is a machine whose handler of AskFlag reads flags in state "idle",
// and in any other state (OnAnyFlags) answers the opposite.
func gated(version string) *fsm.Machine[int] {
	m := fsm.Define("gated", version, "idle", 0)
	fsm.OnFlags(m, "idle", func(a AskFlag, n int, f fsm.Flags) fsm.Result[int] {
		return fsm.Keep(n+1, fsm.Reply(f.On(a.Flag)))
	})
	fsm.OnAnyFlags(m, func(a AskFlag, n int, f fsm.Flags) fsm.Result[int] {
		return fsm.Keep(n+1, fsm.Reply(!f.On(a.Flag)))
	})
	fsm.On(m, "idle", func(s string, n int) fsm.Result[int] { return fsm.Next(s, n) })
	fsm.On(m, "busy", func(s string, n int) fsm.Result[int] { return fsm.Next(s, n) })
	return m
}

// plain answers AskFlag without reading flags: always false.
func plain() *fsm.Machine[int] {
	m := fsm.Define("gated", "v0", "idle", 0)
	fsm.OnAny(m, func(_ AskFlag, n int) fsm.Result[int] { return fsm.Keep(n, fsm.Reply(false)) })
	return m
}

// asked records which machine IDs a source was asked about.
type asked struct {
	mu  sync.Mutex
	ids []string
	on  map[string]bool // by ID
}

func (a *asked) Flag(name, id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ids = append(a.ids, id)
	return a.on[id]
}

func (a *asked) AppendOn(dst []string, id string) []string { return dst }

func TestFlagsReadByHandlers(t *testing.T) {
	sys := actortest.NewSystem(t)
	ctx := t.Context()
	fl := flags.New(flags.WithLogger(slog.New(slog.DiscardHandler)))
	ref, err := fsm.Start(ctx, sys, gated("v1"), fsm.WithID("555-0100"), fsm.WithFlags(fl))
	require.NoError(t, err)
	call := func(ev any) any {
		t.Helper()
		v, err := fsm.Call(ctx, ref, ev)
		require.NoError(t, err)
		return v
	}
	require.Equal(t, false, call(AskFlag{"new"}), "not set: off")
	_, err = fl.Set("new", flags.On, "test")
	require.NoError(t, err)
	require.Equal(t, true, call(AskFlag{"new"}), "seen by the next event")
	require.NoError(t, fsm.Cast(ref, "busy"))
	require.Equal(t, false, call(AskFlag{"new"}), "the any-state handler reads flags too")
	require.NoError(t, fsm.Cast(ref, "idle"))
	_, err = fl.Set("new", flags.Percent(flags.Bucket("new", "555-0100")), "test")
	require.NoError(t, err)
	require.Equal(t, false, call(AskFlag{"new"}), "at its bucket: off")
	_, err = fl.Set("new", flags.Percent(flags.Bucket("new", "555-0100")+1), "test")
	require.NoError(t, err)
	require.Equal(t, true, call(AskFlag{"new"}), "one above its bucket: on")
}

func TestFlagsWithoutSource(t *testing.T) {
	sys := actortest.NewSystem(t)
	ref, err := fsm.Start(t.Context(), sys, gated("v1"))
	require.NoError(t, err)
	v, err := fsm.Call(t.Context(), ref, AskFlag{"any"})
	require.NoError(t, err)
	require.Equal(t, false, v)
	require.False(t, fsm.Flags{}.On("x"))
	require.Equal(t, []string{"a"}, fsm.Flags{}.AppendOn([]string{"a"}))
}

// TestFlagsBoundToID: each machine asks about its own ID, and keeps its
// flags across a change of code to a version that reads them.
func TestFlagsBoundToID(t *testing.T) {
	sys := actortest.NewSystem(t)
	ctx := t.Context()
	src := &asked{on: map[string]bool{"b": true}}
	refA, err := fsm.Start(ctx, sys, plain(), fsm.WithID("a"), fsm.WithFlags(src))
	require.NoError(t, err)
	refB, err := fsm.Start(ctx, sys, plain(), fsm.WithID("b"), fsm.WithFlags(src))
	require.NoError(t, err)
	v, err := fsm.Call(ctx, refB, AskFlag{"x"})
	require.NoError(t, err)
	require.Equal(t, false, v, "v0 does not read flags")
	require.Empty(t, src.ids)

	v1 := gated("v1")
	require.NoError(t, fsm.ChangeCode(ctx, refA, v1))
	require.NoError(t, fsm.ChangeCode(ctx, refB, v1))
	a, err := fsm.Call(ctx, refA, AskFlag{"x"})
	require.NoError(t, err)
	b, err := fsm.Call(ctx, refB, AskFlag{"x"})
	require.NoError(t, err)
	require.Equal(t, []any{false, true}, []any{a, b})
	require.Equal(t, []string{"a", "b"}, slices.Clone(src.ids))
}

func TestOnFlagsPanicsOnDuplicate(t *testing.T) {
	m := gated("v1")
	require.Panics(t, func() {
		fsm.OnFlags(m, "idle", func(AskFlag, int, fsm.Flags) fsm.Result[int] { return fsm.Keep(0) })
	})
	require.Panics(t, func() {
		fsm.OnAnyFlags(m, func(AskFlag, int, fsm.Flags) fsm.Result[int] { return fsm.Keep(0) })
	})
}
