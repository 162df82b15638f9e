package upgrade_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/upgrade"
)

// benchShadowV2 is the bench machine's v2 as a shadow sees it: it answers
// Get as v1 does, or (diverge) otherwise.
func benchShadowV2(diverge bool) *fsm.Machine[BenchDataV2] {
	m := fsm.Define("bench", "v2", "on", BenchDataV2{})
	fsm.On(m, "on", func(_ Get, d BenchDataV2) fsm.Result[BenchDataV2] {
		if diverge {
			return fsm.Keep(d, fsm.Reply(-len(d.Name)))
		}
		return fsm.Keep(d, fsm.Reply(len(d.Name)))
	})
	m.OnUpgrade(func(from, state string, raw msgpack.RawMessage) (string, BenchDataV2, error) {
		var d BenchDataV2
		err := msgpack.Unmarshal(raw, &d)
		return state, d, err
	})
	m.OnDowngrade(func(to, state string, d BenchDataV2) (string, any, error) {
		return state, BenchData{Name: d.Name, Numbers: d.Numbers, Blob: d.Blob}, nil
	})
	return m
}

// BenchmarkShadowOverhead measures the cost of a shadow on the live path:
// two groups of 1,000 machines, one shadowed by v2 and one not, called in
// turn by one client in the same run, so that both see the same load. It
// reports the mean call latency of each group (base-ns, shadow-ns) and
// their ratio (overhead-ratio). "same": v2 answers as v1 does; "diverging":
// v2 answers every Get otherwise (counted and sampled, the shadow made
// again after each).
func BenchmarkShadowOverhead(b *testing.B) {
	for _, diverge := range []bool{false, true} {
		name := map[bool]string{false: "same", true: "diverging"}[diverge]
		b.Run(name, func(b *testing.B) { benchShadow(b, diverge) })
	}
}

func benchShadow(b *testing.B, diverge bool) {
	const n = 1000
	ctx := context.Background()
	h := benchHandler(b, []fsm.Code{benchV1(), benchShadowV2(diverge)})
	var groups [2][]actor.Ref // 0: plain, 1: shadowed
	for g := range groups {
		for i := range n {
			ref, err := h.Start(ctx, "bench", fsm.WithID(fmt.Sprintf("%d-%04d", g, i)),
				fsm.WithTags(map[string]string{"group": fmt.Sprint(g)}))
			if err != nil {
				b.Fatal(err)
			}
			groups[g] = append(groups[g], ref)
		}
	}
	rep, err := h.Upgrade(ctx, "bench", "v2", upgrade.WithStrategy(upgrade.Shadow()),
		upgrade.WithSelector(upgrade.Selector{Tags: map[string]string{"group": "1"}}))
	if err != nil || rep.Changed != n {
		b.Fatalf("shadow: %v (%d machines)", err, rep.Changed)
	}
	var spent [2]time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for g := range groups {
			t0 := time.Now()
			if _, err := fsm.Call(ctx, groups[g][i%n], Get{}); err != nil {
				b.Fatal(err)
			}
			spent[g] += time.Since(t0)
		}
	}
	b.StopTimer()
	sr, err := h.ShadowReport("bench")
	if err != nil {
		b.Fatal(err)
	}
	if want := int64(0); !diverge && sr.Diverged != want {
		b.Fatalf("%d divergences", sr.Diverged)
	}
	if sr.Mirrored < int64(b.N) {
		b.Fatalf("mirrored %d of %d", sr.Mirrored, b.N)
	}
	b.ReportMetric(float64(spent[0].Nanoseconds())/float64(b.N), "base-ns")
	b.ReportMetric(float64(spent[1].Nanoseconds())/float64(b.N), "shadow-ns")
	b.ReportMetric(float64(spent[1])/float64(spent[0]), "overhead-ratio")
}
