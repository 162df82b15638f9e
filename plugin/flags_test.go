package plugin_test

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/flags"
	"github.com/hotline-go/hotline/fsm"
	tm "github.com/hotline-go/hotline/internal/plugintest/machine"
	"github.com/hotline-go/hotline/plugin"
)

// flagCodes returns the test machine's v1 in-process and in the plugin.
func flagCodes(t *testing.T) map[string]fsm.Code {
	return map[string]fsm.Code{"in-process": tm.V1(), "plugin": code(t, load(t), "v1")}
}

// TestFlagsWhileEventsFlow changes a flag twice while a caller sends
// events without pause: every event sees the flag as it was when the
// event was handled, so the replies are off…, on…, off… in that order,
// and the data agrees with the replies.
func TestFlagsWhileEventsFlow(t *testing.T) {
	for where, c := range flagCodes(t) {
		t.Run(where, func(t *testing.T) {
			ctx := t.Context()
			fl := flags.New(flags.WithLogger(slog.New(slog.DiscardHandler)))
			ref, err := fsm.Start(ctx, system(t), c, fsm.WithID("555-0100"), fsm.WithFlags(fl))
			require.NoError(t, err)

			replies := make(chan string) // unbuffered: the caller is at most one call ahead of what was read
			stop := make(chan struct{})
			go func() { // owned by this test: stopped by stop, waited for by draining replies
				defer close(replies)
				for {
					select {
					case <-stop:
						return
					default:
					}
					v, err := fsm.Call(ctx, ref, tm.Bump{})
					if err != nil {
						t.Error(err)
						return
					}
					replies <- v.(string)
				}
			}()
			var got []string
			read := func(n int) {
				for range n {
					r, ok := <-replies
					require.True(t, ok, "the caller stopped")
					got = append(got, r)
				}
			}
			read(20)
			_, err = fl.Set("big", flags.On, "alice")
			require.NoError(t, err)
			read(20)
			_, err = fl.Set("big", flags.Off, "bob")
			require.NoError(t, err)
			read(20)
			close(stop)
			for r := range replies {
				got = append(got, r)
			}

			runs := runsOf(got)
			require.Len(t, runs, 3, "replies %v", got)
			require.Equal(t, []string{"off", "on", "off"}, []string{runs[0].v, runs[1].v, runs[2].v})
			require.GreaterOrEqual(t, runs[0].n, 20)
			require.GreaterOrEqual(t, runs[1].n, 19, "at most one call was in flight at the change")
			want := runs[0].n + 100*runs[1].n + runs[2].n
			v, err := fsm.Call(ctx, ref, tm.Get{})
			require.NoError(t, err)
			cnt, err := plugin.As[tm.Count](v)
			require.NoError(t, err)
			require.Equal(t, want, cnt.N, "the data agrees with the replies")
		})
	}
}

type run struct {
	v string
	n int
}

func runsOf(s []string) []run {
	var out []run
	for _, v := range s {
		if len(out) > 0 && out[len(out)-1].v == v {
			out[len(out)-1].n++
		} else {
			out = append(out, run{v, 1})
		}
	}
	return out
}

// TestFlagsPercentInPlugin: the host evaluates a percentage for the
// machine's ID, so the plugin's answer is the in-process one; a flag the
// host does not know is off in the plugin; each machine gets its own.
func TestFlagsPercentInPlugin(t *testing.T) {
	codes := flagCodes(t)
	fl := flags.New(flags.WithLogger(slog.New(slog.DiscardHandler)))
	sys := system(t)
	ctx := t.Context()
	ids := []string{"555-0100", "555-0101", "555-0102", "555-0103", "555-0104", "555-0105"}
	refs := map[string][]actor.Ref{}
	for where, c := range codes {
		for _, id := range ids {
			ref, err := fsm.Start(ctx, sys, c, fsm.WithID(id), fsm.WithFlags(fl))
			require.NoError(t, err)
			refs[where] = append(refs[where], ref)
		}
	}
	ask := func(ref actor.Ref, name string) bool {
		v, err := fsm.Call(ctx, ref, tm.Flag{Name: name})
		require.NoError(t, err)
		return v.(bool)
	}
	for _, p := range []int{0, 30, 60, 100} {
		_, err := fl.Set("ramp", flags.Percent(p), "ops")
		require.NoError(t, err)
		for i, id := range ids {
			want := flags.Bucket("ramp", id) < p
			require.Equal(t, want, ask(refs["in-process"][i], "ramp"), "in-process %s at %d%%", id, p)
			require.Equal(t, want, ask(refs["plugin"][i], "ramp"), "plugin %s at %d%%", id, p)
		}
	}
	require.False(t, ask(refs["plugin"][0], "never-set"))
}

// TestFlagsAfterChangeOfCode: a machine moved by a change of code from an
// in-process version to the plugin reads its flags there.
func TestFlagsAfterChangeOfCode(t *testing.T) {
	fl := flags.New(flags.WithLogger(slog.New(slog.DiscardHandler)))
	_, err := fl.Set("x", flags.On, "ops")
	require.NoError(t, err)
	ctx := t.Context()
	ref, err := fsm.Start(ctx, system(t), tm.V2(), fsm.WithID("m"), fsm.WithFlags(fl))
	require.NoError(t, err)
	require.NoError(t, fsm.ChangeCode(ctx, ref, code(t, load(t), "v1"), fsm.AsDowngrade()))
	v, err := fsm.Call(ctx, ref, tm.Flag{Name: "x"})
	require.NoError(t, err)
	require.Equal(t, true, v)
	_, err = fl.Set("x", flags.Off, "ops")
	require.NoError(t, err)
	v, err = fsm.Call(ctx, ref, tm.Flag{Name: "x"})
	require.NoError(t, err)
	require.Equal(t, false, v)
}
