package fsm_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"
	"testing/synctest"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/actor/actortest"
	"github.com/hotline-go/hotline/fsm"
	"github.com/stretchr/testify/require"
)

func TestEventKinds(t *testing.T) {
	sys := actortest.NewSystem(t)
	ref := start(t, sys, phoneV1())
	require.NoError(t, fsm.Cast(ref, KeyPressed{5}))   // cast
	require.NoError(t, actor.Send(ref, KeyPressed{5})) // info: the same
	v, err := fsm.Call(context.Background(), ref, GetStatus{})
	require.NoError(t, err)
	require.Equal(t, "v1 [5 5] in=0 out=0 calls=0", v)
	require.Equal(t, "dialing", info(t, ref).State)
}

// quitter is a machine that stops as its events say.
type (
	Quit        struct{ Reply bool }
	QuitLater   struct{}
	ReplyNoMore struct{}
)

func quitter() *fsm.Machine[int] {
	m := fsm.Define("quitter", "v1", "on", 0)
	fsm.OnAny(m, func(q Quit, n int) fsm.Result[int] {
		if q.Reply {
			return fsm.StopWith(errTest, n, fsm.Reply("bye"))
		}
		return fsm.StopWith(errTest, n)
	})
	fsm.On(m, "on", func(_ QuitLater, n int) fsm.Result[int] { return fsm.Keep(n, fsm.Postpone()) })
	fsm.OnAny(m, func(_ ReplyNoMore, n int) fsm.Result[int] { return fsm.Keep(n) })
	return m
}

func TestStop(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		ev      any
		reply   any
		callErr error
	}{
		{name: "reply first", ev: Quit{Reply: true}, reply: "bye"},
		{name: "unanswered caller learns the reason", ev: Quit{}, callErr: errTest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := actortest.NewSystem(t)
			ref := start(t, sys, quitter())
			v, err := fsm.Call(ctx, ref, tt.ev)
			if tt.callErr != nil {
				var exit *actor.ExitError
				require.ErrorAs(t, err, &exit)
				require.ErrorIs(t, err, tt.callErr)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tt.reply, v)
			reason, err := actor.Wait(ctx, ref)
			require.NoError(t, err)
			require.ErrorIs(t, reason, errTest)
		})
	}
}

func TestCallWithoutReply(t *testing.T) {
	sys := actortest.NewSystem(t)
	ref := start(t, sys, quitter())
	_, err := fsm.Call(context.Background(), ref, ReplyNoMore{})
	require.ErrorIs(t, err, actor.ErrNoReply)
}

func TestPostponedCallerLearnsOfStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		sys := actortest.NewSystem(t)
		ref := start(t, sys, quitter())
		done := make(chan error, 1)
		go func() {
			_, err := fsm.Call(ctx, ref, QuitLater{})
			done <- err
		}()
		synctest.Wait()
		require.Equal(t, 1, info(t, ref).Postponed)
		cast(t, ref, Quit{})
		err := <-done
		var exit *actor.ExitError
		require.ErrorAs(t, err, &exit)
		require.ErrorIs(t, err, errTest)
	})
}

func TestPostponedCallAnsweredLater(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		m := fsm.Define("waiter", "v1", "closed", 0)
		fsm.On(m, "closed", func(_ GetStatus, n int) fsm.Result[int] { return fsm.Keep(n, fsm.Postpone()) })
		fsm.On(m, "open", func(_ GetStatus, n int) fsm.Result[int] { return fsm.Keep(n, fsm.Reply(n)) })
		fsm.OnAny(m, func(_ Answered, n int) fsm.Result[int] { return fsm.Next("open", 42) })
		sys := actortest.NewSystem(t)
		ref := start(t, sys, m)
		done := make(chan any, 1)
		go func() {
			v, err := fsm.Call(ctx, ref, GetStatus{})
			if err != nil {
				done <- err
				return
			}
			done <- v
		}()
		synctest.Wait()
		require.Equal(t, 1, info(t, ref).Postponed)
		cast(t, ref, Answered{})
		require.Equal(t, 42, <-done)
	})
}

func TestUnknownEvents(t *testing.T) {
	ctx := context.Background()
	sys := actortest.NewSystem(t)
	ref := start(t, sys, phoneV1())

	_, err := fsm.Call(ctx, ref, AudioSent{Bytes: 1}) // no handler in "off"
	require.ErrorIs(t, err, fsm.ErrUnknownEvent)
	require.EqualError(t, err, `fsm: no handler for event AudioSent in state "off" of phone v1`)

	cast(t, ref, AudioSent{Bytes: 1}, "noise", 42)
	inf := info(t, ref)
	require.Equal(t, uint64(3), inf.Dropped)
	require.Equal(t, "off", inf.State)

	// A payload named like a known event that does not convert.
	_, err = fsm.Call(ctx, ref, badKey{Digit: "#"})
	require.ErrorIs(t, err, fsm.ErrBadEvent)
	cast(t, ref, badKey{Digit: "#"})
	require.Equal(t, uint64(4), info(t, ref).Dropped)

	require.Equal(t, "v1 [] in=0 out=0 calls=0", status(t, ref), "the machine goes on")
}

func TestUnknownCastIsLogged(t *testing.T) {
	var buf bytes.Buffer
	sys := actor.NewSystem(actor.WithLogger(slog.New(slog.NewTextHandler(&buf, nil))))
	t.Cleanup(func() { require.NoError(t, sys.Shutdown(context.Background())) })
	ref := start(t, sys, phoneV1(), fsm.WithID("555-0100"))
	cast(t, ref, AudioSent{Bytes: 1})
	require.NoError(t, fsm.Sync(context.Background(), ref))
	log := buf.String()
	for _, want := range []string{
		`level=WARN msg="fsm: event dropped"`, "machine=phone", "version=v1", "id=555-0100",
		"kind=cast", "event=AudioSent", `error="fsm: no handler for event AudioSent in state \"off\" of phone v1"`,
	} {
		require.Contains(t, log, want)
	}
}

// badKey is named KeyPressed but its Digit does not decode as an int.
type badKey struct{ Digit string }

func (badKey) EventName() string { return "KeyPressed" }

func TestEventOfAnotherTypeConverts(t *testing.T) {
	sys := actortest.NewSystem(t)
	ref := start(t, sys, phoneV1())
	cast(t, ref, goodKey{Digit: 7}, &KeyPressed{Digit: 8})
	require.Equal(t, "v1 [7 8] in=0 out=0 calls=0", status(t, ref))
}

// goodKey is KeyPressed as another package would declare it.
type goodKey struct {
	Digit int
	Extra string
}

func (goodKey) EventName() string { return "KeyPressed" }

func TestPanicEndsMachine(t *testing.T) {
	ctx := context.Background()
	sys := actortest.NewSystem(t)
	ref := start(t, sys, phoneV1())
	_, err := fsm.Call(ctx, ref, Explode{})
	var p *actor.PanicError
	require.ErrorAs(t, err, &p)
	require.Equal(t, "exploded", p.Value)
	reason, err := actor.Wait(ctx, ref)
	require.NoError(t, err)
	require.ErrorAs(t, reason, &p)
}

func TestInspect(t *testing.T) {
	ctx := context.Background()
	sys := actortest.NewSystem(t)
	tags := map[string]string{"region": "eu", "cohort": "beta"}
	ref := start(t, sys, phoneV1(), fsm.WithID("555-0100"), fsm.WithTags(tags))
	tags["region"] = "us" // Start copied them
	cast(t, ref, KeyPressed{1})
	inf := info(t, ref)
	want, err := phoneV1().Snapshot("dialing", PhoneV1{Digits: []int{1}})
	require.NoError(t, err)
	require.Equal(t, fsm.Info{
		Machine: "phone", Version: "v1", ID: "555-0100",
		Tags:  map[string]string{"region": "eu", "cohort": "beta"},
		State: "dialing", Data: want.Data, Timeouts: []string{"state_timeout"},
	}, inf)
	require.True(t, inf.HasTags(map[string]string{"region": "eu"}))

	plain, err := sys.Spawn(actor.BehaviorFunc(func(*actor.Context, any) {}))
	require.NoError(t, err)
	_, err = fsm.Inspect(ctx, plain)
	require.ErrorIs(t, err, fsm.ErrNotMachine)
	require.ErrorIs(t, fsm.ChangeCode(ctx, plain, phoneV2()), fsm.ErrNotMachine)
	_, err = fsm.Inspect(ctx, actor.Ref{})
	require.ErrorIs(t, err, actor.ErrNoProc)
}

func TestStartFromSnapshot(t *testing.T) {
	ctx := context.Background()
	v1, v2 := phoneV1(), phoneV2()
	snap, err := v1.Snapshot("in_progress", PhoneV1{Digits: []int{1, 2, 3}, In: 10, Calls: 1})
	require.NoError(t, err)
	tests := []struct {
		name    string
		code    fsm.Code
		snap    fsm.Snapshot
		state   string
		status  string
		wantErr error
	}{
		{name: "same version loads", code: v1, snap: snap, state: "in_progress", status: "v1 [1 2 3] in=10 out=0 calls=1"},
		{name: "older version upgrades", code: v2, snap: snap, state: "talking", status: `v2 "123" in=10 out=0 calls=1`},
		{name: "another machine", code: quitter(), snap: snap, wantErr: fsm.ErrWrongMachine},
		{name: "bad data", code: v1, snap: fsm.Snapshot{Machine: "phone", Version: "v1", State: "off", Data: []byte{0xc1}}, wantErr: fsm.ErrBadData},
		{name: "failed upgrade", code: v2, snap: fsm.Snapshot{Machine: "phone", Version: "v0", State: "off", Data: snap.Data}, wantErr: errors.New("no upgrade from v0")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := actortest.NewSystem(t)
			ref, err := fsm.Start(ctx, sys, tt.code, fsm.FromSnapshot(tt.snap))
			if tt.wantErr != nil {
				require.ErrorContains(t, err, tt.wantErr.Error())
				require.Equal(t, 0, sys.Count())
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.state, info(t, ref).State)
			require.Equal(t, tt.status, status(t, ref))
		})
	}
}

func TestStartRunsEnter(t *testing.T) {
	ctx := context.Background()
	m := fsm.Define("greeter", "v1", "idle", "")
	m.InitFunc(func(id string) (string, string) { return "hello", "for " + id })
	m.Enter("hello", func(prev string, d string) fsm.Result[string] { return fsm.Keep(d + ", entered from " + prev) })
	fsm.OnAny(m, func(_ GetStatus, d string) fsm.Result[string] { return fsm.Keep(d, fsm.Reply(d)) })
	sys := actortest.NewSystem(t)
	ref := start(t, sys, m, fsm.WithID("ann"))
	require.Equal(t, "for ann, entered from hello", status(t, ref))

	stopper := fsm.Define("stopper", "v1", "s", 0)
	stopper.Enter("s", func(string, int) fsm.Result[int] { return fsm.StopWith(errTest, 0) })
	_, err := fsm.Start(ctx, sys, stopper)
	require.ErrorIs(t, err, errTest)
}

func TestStartWithSpawnOptions(t *testing.T) {
	sys := actortest.NewSystem(t)
	ref := start(t, sys, phoneV1(), fsm.WithSpawnOptions(actor.WithName("phone-1")))
	got, ok := sys.Whereis("phone-1")
	require.True(t, ok)
	require.Equal(t, ref, got)
}

func TestDefinePanics(t *testing.T) {
	tests := []struct {
		name string
		f    func()
	}{
		{"empty name", func() { fsm.Define("", "v1", "s", 0) }},
		{"two handlers", func() {
			m := fsm.Define("m", "v1", "s", 0)
			fsm.On(m, "s", func(Hangup, int) fsm.Result[int] { return fsm.Keep(0) })
			fsm.On(m, "s", func(Hangup, int) fsm.Result[int] { return fsm.Keep(0) })
		}},
		{"two any-state handlers", func() {
			m := fsm.Define("m", "v1", "s", 0)
			fsm.OnAny(m, func(Hangup, int) fsm.Result[int] { return fsm.Keep(0) })
			fsm.OnAny(m, func(Hangup, int) fsm.Result[int] { return fsm.Keep(0) })
		}},
		{"interface event", func() {
			m := fsm.Define("m", "v1", "s", 0)
			fsm.OnAny(m, func(error, int) fsm.Result[int] { return fsm.Keep(0) })
		}},
		{"two types of one name", func() {
			m := fsm.Define("m", "v1", "s", 0)
			fsm.OnAny(m, func(KeyPressed, int) fsm.Result[int] { return fsm.Keep(0) })
			fsm.OnAny(m, func(Key, int) fsm.Result[int] { return fsm.Keep(0) })
		}},
		{"two enter handlers", func() {
			m := fsm.Define("m", "v1", "s", 0)
			m.Enter("s", func(string, int) fsm.Result[int] { return fsm.Keep(0) })
			m.Enter("s", func(string, int) fsm.Result[int] { return fsm.Keep(0) })
		}},
		{"changed after use", func() {
			m := fsm.Define("m", "v1", "s", 0)
			if _, err := m.New(context.Background(), ""); err != nil {
				panic("unexpected: " + err.Error())
			}
			fsm.OnAny(m, func(Hangup, int) fsm.Result[int] { return fsm.Keep(0) })
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { require.Panics(t, tt.f) })
	}
}
