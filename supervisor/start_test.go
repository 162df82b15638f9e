package supervisor_test

import (
	"errors"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/supervisor"
)

// failInit is a Behavior whose Init fails (or panics).
type failInit struct {
	err   error
	panic bool
}

func (f failInit) Init(*actor.Context) error {
	if f.panic {
		panic(f.err)
	}
	return f.err
}

func (failInit) Receive(*actor.Context, any) {}

// A child that fails to start fails its supervisor's start, with an error
// that names it; the children started before it are stopped, in reverse
// order, and those after it are never started.
func TestCrashDuringStart(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name      string
		start     func(sc supervisor.StartContext) (actor.Ref, error)
		wantPanic bool
	}{
		{"Init returns an error", func(sc supervisor.StartContext) (actor.Ref, error) {
			return sc.Spawn(failInit{err: boom})
		}, false},
		{"Init panics", func(sc supervisor.StartContext) (actor.Ref, error) {
			return sc.Spawn(failInit{err: boom, panic: true})
		}, true},
		{"Start returns an error", func(supervisor.StartContext) (actor.Ref, error) {
			return actor.Ref{}, boom
		}, false},
		{"Start panics", func(supervisor.StartContext) (actor.Ref, error) {
			panic(boom)
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sys, _ := newSystem(t)
				j := new(journal)
				_, err := supervisor.Start(sys, supervisor.OneForOne, []supervisor.ChildSpec{
					spec(j, "a", supervisor.Permanent),
					spec(j, "b", supervisor.Permanent),
					{ID: "bad", Start: tt.start},
					spec(j, "c", supervisor.Permanent),
				})
				var se *supervisor.StartError
				require.ErrorAs(t, err, &se)
				require.Equal(t, "bad", se.Child)
				require.ErrorIs(t, err, boom)
				require.Contains(t, err.Error(), `child "bad" failed to start`)
				var pe *actor.PanicError
				require.Equal(t, tt.wantPanic, errors.As(err, &pe))
				require.Equal(t, []string{"start a", "start b", "stop b: actor: shutdown", "stop a: actor: shutdown"}, j.take())
				require.Equal(t, 0, sys.Count(), "nothing is left running")
			})
		})
	}
}

// The error of a child that fails deep in a tree names each level.
func TestCrashDuringStartNested(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, _ := newSystem(t)
		j := new(journal)
		boom := errors.New("boom")
		_, err := supervisor.Start(sys, supervisor.OneForOne, []supervisor.ChildSpec{
			spec(j, "a", supervisor.Permanent),
			supervisor.SubtreeSpec("sub", supervisor.OneForAll, []supervisor.ChildSpec{
				spec(j, "x", supervisor.Permanent),
				{ID: "y", Start: func(supervisor.StartContext) (actor.Ref, error) { return actor.Ref{}, boom }},
			}),
		})
		require.ErrorIs(t, err, boom)
		require.EqualError(t, err, `supervisor: child "sub" failed to start: supervisor: child "y" failed to start: boom`)
		require.Equal(t, []string{"start a", "start x", "stop x: actor: shutdown", "stop a: actor: shutdown"}, j.take())
		require.Equal(t, 0, sys.Count())
	})
}

// A Start function that returns the zero Ref and no error declines, as
// OTP's ignore: the spec is kept (dropped if temporary), with no process.
func TestDeclinedStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, _ := newSystem(t)
		j := new(journal)
		decline := func(supervisor.StartContext) (actor.Ref, error) { return actor.Ref{}, nil }
		sup := start(t, sys, supervisor.OneForOne, []supervisor.ChildSpec{
			{ID: "kept", Start: decline},
			{ID: "dropped", Start: decline, Restart: supervisor.Temporary},
			spec(j, "a", supervisor.Permanent),
		})
		children := which(t, sup)
		require.Equal(t, []string{"kept", "a"}, ids(children))
		require.Equal(t, supervisor.Stopped, children[0].Status)
		require.True(t, children[0].Ref.IsZero())
	})
}

func TestBadSpecs(t *testing.T) {
	ok := func(supervisor.StartContext) (actor.Ref, error) { return actor.Ref{}, nil }
	tests := []struct {
		name     string
		strategy supervisor.Strategy
		specs    []supervisor.ChildSpec
	}{
		{"no Start", supervisor.OneForOne, []supervisor.ChildSpec{{ID: "a"}}},
		{"no ID", supervisor.OneForOne, []supervisor.ChildSpec{{Start: ok}}},
		{"duplicate ID", supervisor.OneForAll, []supervisor.ChildSpec{{ID: "a", Start: ok}, {ID: "a", Start: ok}}},
		{"bad restart", supervisor.OneForOne, []supervisor.ChildSpec{{ID: "a", Start: ok, Restart: 9}}},
		{"bad kind", supervisor.OneForOne, []supervisor.ChildSpec{{ID: "a", Start: ok, Kind: 9}}},
		{"bad shutdown", supervisor.OneForOne, []supervisor.ChildSpec{{ID: "a", Start: ok, Shutdown: -2}}},
		{"simple-one-for-one without a spec", supervisor.SimpleOneForOne, nil},
		{"simple-one-for-one with two", supervisor.SimpleOneForOne, []supervisor.ChildSpec{{ID: "a", Start: ok}, {ID: "b", Start: ok}}},
		{"unknown strategy", 9, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys, _ := newSystem(t)
			_, err := supervisor.Start(sys, tt.strategy, tt.specs)
			require.ErrorIs(t, err, supervisor.ErrBadSpec)
			require.Equal(t, 0, sys.Count())
		})
	}
}

func TestBadOptionsPanic(t *testing.T) {
	require.Panics(t, func() { supervisor.WithIntensity(-1, 1) })
	require.Panics(t, func() { supervisor.WithIntensity(1, 0) })
	require.Panics(t, func() { supervisor.WithBackoff(0, 1) })
	require.Panics(t, func() { supervisor.WithBackoff(2, 1) })
	require.Panics(t, func() { supervisor.WithJitter(-0.1) })
	require.Panics(t, func() { supervisor.WithKillWait(0) })
}

// Start fails as Spawn does once the System is shutting down, and a name
// is registered.
func TestStartNameAndStoppedSystem(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, _ := newSystem(t)
		j := new(journal)
		sup := start(t, sys, supervisor.OneForOne, specs(j, supervisor.Permanent, "a"), supervisor.WithName("root"))
		got, ok := sys.Whereis("root")
		require.True(t, ok)
		require.Equal(t, sup, got)
		_, err := supervisor.Start(sys, supervisor.OneForOne, nil, supervisor.WithName("root"))
		require.ErrorIs(t, err, actor.ErrNameTaken)

		require.NoError(t, sys.Shutdown(t.Context()))
		_, err = supervisor.Start(sys, supervisor.OneForOne, specs(j, supervisor.Permanent, "a"))
		require.ErrorIs(t, err, actor.ErrStopped)
	})
}
