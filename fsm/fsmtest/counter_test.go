package fsmtest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hotline-go/hotline/fsm"
	"github.com/vmihailenco/msgpack/v5"
)

// A counter machine in two versions: v2 renames the field and adds a
// label. Its downgrade can be made to lose the label, or to break.

type (
	Inc     struct{ By int }
	Get     struct{}
	Expired struct{}
)

type CounterV1 struct{ N int }

type CounterV2 struct {
	Count int
	Label string
}

func counterV1() *fsm.Machine[CounterV1] {
	m := fsm.Define("counter", "v1", "idle", CounterV1{})
	fsm.OnAny(m, func(i Inc, c CounterV1) fsm.Result[CounterV1] {
		return fsm.Next("counting", CounterV1{N: c.N + i.By}, fsm.StateTimeout(time.Minute, Expired{}))
	})
	fsm.OnAny(m, func(_ Get, c CounterV1) fsm.Result[CounterV1] { return fsm.Keep(c, fsm.Reply(c.N)) })
	fsm.On(m, "counting", func(_ Expired, c CounterV1) fsm.Result[CounterV1] { return fsm.Next("idle", c) })
	return m
}

// counterV2 returns v2. A lossy v2 drops v1's count above 100 on the way
// down; a broken one fails to downgrade "idle".
func counterV2(lossy, broken bool) *fsm.Machine[CounterV2] {
	m := fsm.Define("counter", "v2", "idle", CounterV2{})
	fsm.OnAny(m, func(i Inc, c CounterV2) fsm.Result[CounterV2] {
		c.Count += i.By
		return fsm.Next("counting", c, fsm.StateTimeout(time.Minute, Expired{}))
	})
	fsm.OnAny(m, func(_ Get, c CounterV2) fsm.Result[CounterV2] { return fsm.Keep(c, fsm.Reply(c.Count)) })
	fsm.On(m, "counting", func(_ Expired, c CounterV2) fsm.Result[CounterV2] { return fsm.Next("idle", c) })
	m.OnUpgrade(func(from, state string, data msgpack.RawMessage) (string, CounterV2, error) {
		var old CounterV1
		if err := msgpack.Unmarshal(data, &old); err != nil {
			return "", CounterV2{}, err
		}
		return state, CounterV2{Count: old.N, Label: "migrated"}, nil
	})
	m.OnDowngrade(func(to, state string, c CounterV2) (string, any, error) {
		switch {
		case broken && state == "idle":
			return "", nil, fmt.Errorf("cannot downgrade %q", state)
		case lossy && c.Count > 100:
			return state, CounterV1{N: 100}, nil
		}
		return state, CounterV1{N: c.Count}, nil
	})
	return m
}

// reporter is a testing.TB that prints what a test would report, for
// tests of the helpers' failures and for Examples.
type reporter struct {
	testing.TB
	errs []string
}

func (*reporter) Helper()                  {}
func (*reporter) Context() context.Context { return context.Background() }

func (r *reporter) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
