package upgrade

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/fsm"
)

// sessionV2From is the session machine's v2 declaring the versions its
// UPGRADE reads.
func sessionV2From(versions ...string) *fsm.Machine[sessionData] {
	m := sessionCode("v2")
	m.UpgradesFromVersions(versions...)
	return m
}

// A new binary in which no chain of declared UPGRADE handlers leads from a
// handed-over machine's version to a version it has refuses the handoff
// before it starts any machine, naming the machine, its version and the
// versions it has; the old process resumes and serves on.
func TestHandoffRefusesMachineWithoutPath(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts func(t *testing.T) []HandoffOption
		want []string
	}{
		{
			name: "WithCodes",
			opts: func(*testing.T) []HandoffOption {
				return []HandoffOption{WithCodes(sessionV2From("v1.5"))}
			},
			want: []string{`machine "m1"`, "session v1", "this binary has session v2 (upgrades from v1.5)"},
		},
		{
			name: "WithCodes chain",
			opts: func(*testing.T) []HandoffOption {
				v3 := sessionCode("v3")
				v3.UpgradesFromVersions("v2")
				return []HandoffOption{WithCodes(sessionV2From("v1.5"), v3)}
			},
			want: []string{`machine "m1"`, "session v1", "this binary has session v2 (upgrades from v1.5), v3 (upgrades from v2)"},
		},
		{
			name: "WithReleaseHandler",
			opts: func(t *testing.T) []HandoffOption {
				rh, err := NewReleaseHandler(testSystem(t))
				require.NoError(t, err)
				t.Cleanup(func() { require.NoError(t, rh.Close(context.Background())) })
				require.NoError(t, rh.Register(sessionV2From("v1.5")))
				return []HandoffOption{WithReleaseHandler(rh)}
			},
			want: []string{`machine "m1"`, "session v1", "this binary has session v2 (upgrades from v1.5)"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "handoff")
			old, oldRef, _, resumed := oldSide(t, dir)
			reply, done := old.upgrade(t)
			nw := successorOf(t, old, dir, tc.opts(t)...)
			_, err := nw.h.Receive(context.Background())
			require.ErrorIs(t, err, ErrHandoff)
			require.ErrorIs(t, err, ErrNoPath)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
			_, ok := nw.h.Machine("m1")
			require.False(t, ok, "nothing managed in the new process")

			// The old process serves on, its machine on v1.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			v, err := fsm.Call(ctx, oldRef, Line{Text: "z"})
			require.NoError(t, err)
			require.Regexp(t, `^3 \d+ v1 z$`, v)
			reply <- errors.New("child exited")
			require.Error(t, <-done)
			require.Equal(t, int32(1), resumed.Load())
			require.Contains(t, old.log.String(), "session v1")
		})
	}
}

// A release handler without the machine's version restores it through a
// version that declares reading it.
func TestHandoffReleaseRestoresThroughDeclaredVersion(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "handoff")
	old, _, _, _ := oldSide(t, dir)
	reply, done := old.upgrade(t)
	rh, err := NewReleaseHandler(testSystem(t))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, rh.Close(context.Background())) })
	require.NoError(t, rh.Register(sessionV2From("v1")))
	v3 := sessionCode("v3")
	v3.UpgradesFromVersions("v2")
	require.NoError(t, rh.Register(v3))
	_, err = rh.Upgrade(context.Background(), "session", "v3")
	require.NoError(t, err)
	nw := successorOf(t, old, dir, WithReleaseHandler(rh))
	got, err := nw.h.Receive(context.Background())
	require.NoError(t, err)
	inf, err := fsm.Inspect(context.Background(), got.Machines["m1"])
	require.NoError(t, err)
	require.Equal(t, "v3", inf.Version)
	v, err := fsm.Call(context.Background(), got.Machines["m1"], Line{Text: "y"})
	require.NoError(t, err)
	require.Regexp(t, `^3 \d+ v3 y$`, v, "the data came along")
	reply <- nil
	require.NoError(t, <-done)
	for _, c := range got.Conns {
		require.NoError(t, c.Conn.Close())
	}
}

// codePath follows declared UPGRADE handlers: each later version in turn
// from a version it has, straight to the last from one it lacks, and
// around a version that does not read the one before.
func TestCodePath(t *testing.T) {
	declared := func(v string, from ...string) fsm.Code {
		m := chainCode(v)
		m.UpgradesFromVersions(from...) // none given: reads none
		return m
	}
	undeclared := func(v string) fsm.Code { return chainCode(v) }
	for _, tc := range []struct {
		name  string
		codes []fsm.Code
		from  string
		want  []string // nil: no path
	}{
		{"same", []fsm.Code{undeclared("v1"), undeclared("v2")}, "v2", []string{"v2"}},
		{"each in turn", []fsm.Code{undeclared("v1"), undeclared("v2"), undeclared("v3")}, "v1", []string{"v2", "v3"}},
		{"unknown straight to last", []fsm.Code{undeclared("v1"), undeclared("v2")}, "v0", []string{"v2"}},
		{"unknown through the one that reads it", []fsm.Code{declared("v2", "v1"), declared("v3", "v2")}, "v1", []string{"v2", "v3"}},
		{"around a step", []fsm.Code{undeclared("v1"), declared("v2", "v0"), declared("v3", "v1", "v2")}, "v1", []string{"v3"}},
		{"none declared", []fsm.Code{declared("v2", "v1.5")}, "v1", nil},
		{"first version reads none", []fsm.Code{declared("v1"), declared("v2", "v1")}, "v0", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := codePath(tc.codes, tc.from)
			if tc.want == nil {
				require.Nil(t, path)
				return
			}
			got := make([]string, len(path))
			for i, c := range path {
				got[i] = c.Version()
			}
			require.Equal(t, tc.want, got)
		})
	}
}
