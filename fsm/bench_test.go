package fsm_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/actor/actortest"
	"github.com/hotline-go/hotline/fsm"
	"github.com/vmihailenco/msgpack/v5"
)

// The FSM benchmarks and their actor baselines are paired by name: run
// them in one `go test -bench` invocation and compare ns/op as ratios.
// BenchmarkActorSend and BenchmarkActorCall are those of package actor,
// from actortest.

// BenchmarkActorSend: one sender, one actor, small messages.
func BenchmarkActorSend(b *testing.B) { actortest.SendBaseline(b) }

// BenchmarkActorCall: request and reply from outside an actor.
func BenchmarkActorCall(b *testing.B) { actortest.CallBaseline(context.Background(), b) }

// Add and Get are the benchmarks' events; small values box without
// allocating, as the baseline's ints do.
type (
	Add struct{ N int }
	Get struct{ N int }
)

func adder() *fsm.Machine[int] {
	m := fsm.Define("adder", "v1", "on", 0)
	fsm.On(m, "on", func(a Add, n int) fsm.Result[int] { return fsm.Keep(n + a.N) })
	fsm.On(m, "on", func(g Get, n int) fsm.Result[int] { return fsm.Keep(n, fsm.Reply(g.N)) })
	return m
}

func startBench(b *testing.B, s *actor.System, code fsm.Code, opts ...fsm.StartOption) actor.Ref {
	r, err := fsm.Start(context.Background(), s, code, opts...)
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// BenchmarkFSMEvent: BenchmarkActorSend through a machine: one sender,
// cast events, each handled by a typed handler in the machine's state.
func BenchmarkFSMEvent(b *testing.B) {
	s := actortest.NewSystem(b)
	r := startBench(b, s, adder())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := fsm.Cast(r, Add{i & 0xff}); err != nil {
			b.Fatal(err)
		}
	}
	if err := fsm.Sync(context.Background(), r); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkFSMCall: BenchmarkActorCall through a machine.
func BenchmarkFSMCall(b *testing.B) {
	s := actortest.NewSystem(b)
	r := startBench(b, s, adder())
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := fsm.Call(ctx, r, Get{i & 0xff}); err != nil {
			b.Fatal(err)
		}
	}
}

// Ledger is data of about 1 KB as msgpack.
type Ledger struct {
	Owner   string
	Balance int64
	Entries []Entry
}

type Entry struct {
	ID     int
	Amount int64
	Memo   string
}

func ledger() Ledger {
	l := Ledger{Owner: "bench", Balance: 1 << 40}
	for i := range 24 {
		l.Entries = append(l.Entries, Entry{ID: i, Amount: int64(i) * 1000, Memo: fmt.Sprintf("entry number %02d", i)})
	}
	return l
}

func ledgerCode(version string) *fsm.Machine[Ledger] {
	m := fsm.Define("ledger", version, "open", ledger())
	fsm.On(m, "open", func(a Add, l Ledger) fsm.Result[Ledger] {
		l.Balance += int64(a.N)
		return fsm.Keep(l)
	})
	m.OnUpgrade(func(_, state string, raw msgpack.RawMessage) (string, Ledger, error) {
		var l Ledger
		err := msgpack.Unmarshal(raw, &l)
		return state, l, err
	})
	m.OnDowngrade(func(_, state string, l Ledger) (string, any, error) { return state, l, nil })
	return m
}

// BenchmarkFSMCodeChange: the pause of one machine's change of code, from
// suspend to resume, with 1 KB of data (encoded, UPGRADE decodes it).
// Changes go v1 -> v2 (upgrade) and back (downgrade) in turn.
func BenchmarkFSMCodeChange(b *testing.B) {
	s := actortest.NewSystem(b)
	v1, v2 := ledgerCode("v1"), ledgerCode("v2")
	r := startBench(b, s, v1)
	ctx := context.Background()
	inf, err := fsm.Inspect(ctx, r)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			err = fsm.ChangeCode(ctx, r, v2)
		} else {
			err = fsm.ChangeCode(ctx, r, v1, fsm.AsDowngrade())
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e3/float64(b.N), "pause-µs")
	b.ReportMetric(float64(len(inf.Data)), "data-bytes")
}
