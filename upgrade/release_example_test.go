package upgrade_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/upgrade"
)

// A session machine in two versions: v2 adds a field, and its UPGRADE
// fills it in from v1's data.
type (
	Touch     struct{}
	Hits      struct{}
	SessionV1 struct{ Hits int }
	SessionV2 struct {
		Hits int
		Plan string
	}
)

func sessionV1() *fsm.Machine[SessionV1] {
	m := fsm.Define("session", "v1", "open", SessionV1{})
	fsm.On(m, "open", func(_ Touch, d SessionV1) fsm.Result[SessionV1] { d.Hits++; return fsm.Keep(d) })
	fsm.On(m, "open", func(_ Hits, d SessionV1) fsm.Result[SessionV1] { return fsm.Keep(d, fsm.Reply(d.Hits)) })
	return m
}

func sessionV2() *fsm.Machine[SessionV2] {
	m := fsm.Define("session", "v2", "open", SessionV2{Plan: "free"})
	fsm.On(m, "open", func(_ Touch, d SessionV2) fsm.Result[SessionV2] { d.Hits++; return fsm.Keep(d) })
	fsm.On(m, "open", func(_ Hits, d SessionV2) fsm.Result[SessionV2] { return fsm.Keep(d, fsm.Reply(d.Hits)) })
	m.OnUpgrade(func(from, state string, raw msgpack.RawMessage) (string, SessionV2, error) {
		var old SessionV1
		if err := msgpack.Unmarshal(raw, &old); err != nil {
			return "", SessionV2{}, err
		}
		return state, SessionV2{Hits: old.Hits, Plan: "free"}, nil
	})
	m.OnDowngrade(func(to, state string, d SessionV2) (string, any, error) {
		return state, SessionV1{Hits: d.Hits}, nil
	})
	m.UpgradesFromVersions("v1")
	m.DowngradesToVersions("v1")
	return m
}

// Upgrade three running sessions from v1 to v2 in one consistent cut, then
// confirm the new version.
func ExampleReleaseHandler_Upgrade() {
	ctx := context.Background()
	sys := actor.NewSystem()
	defer func() { _ = sys.Shutdown(ctx) }()
	h, err := upgrade.NewReleaseHandler(sys, upgrade.WithReleaseLogger(quiet()))
	if err != nil {
		panic(err)
	}
	defer func() { _ = h.Close(ctx) }()
	if err := errors.Join(h.Register(sessionV1()), h.Register(sessionV2())); err != nil {
		panic(err)
	}

	var refs []actor.Ref
	for _, id := range []string{"ann", "bob", "cy"} {
		ref, err := h.Start(ctx, "session", fsm.WithID(id))
		if err != nil {
			panic(err)
		}
		_ = fsm.Cast(ref, Touch{})
		refs = append(refs, ref)
	}

	dry, err := h.DryRun(ctx, "session", "v2")
	fmt.Println("dry run:", dry.Passed, "of", dry.Selected, "would pass", err)

	rep, err := h.Upgrade(ctx, "session", "v2")
	fmt.Println(rep.Result, rep.From, "->", rep.To, "machines:", rep.Changed, err)

	hits, err := fsm.Call(ctx, refs[0], Hits{})
	fmt.Println("hits kept:", hits, err)

	st := h.Status()[0]
	fmt.Println("current", st.Current, "permanent", st.Permanent)
	if err := h.Confirm(ctx, "session"); err != nil {
		panic(err)
	}
	st = h.Status()[0]
	fmt.Println("current", st.Current, "permanent", st.Permanent)
	// Output:
	// dry run: 3 of 3 would pass <nil>
	// ok [v1] -> v2 machines: 3 <nil>
	// hits kept: 1 <nil>
	// current v2 permanent v1
	// current v2 permanent v2
}
