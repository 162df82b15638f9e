package fsmtest_test

import (
	"fmt"

	"github.com/hotline-go/hotline/fsm/fsmtest"
)

// A round trip that fails: counter v2's downgrade caps the count at 100,
// so a v1 machine that counted to 1000 would come back from a rollback
// with 100. A test passes its *testing.T; here a reporter prints what the
// test would report.
func ExampleRoundTrip() {
	t := &reporter{}
	v1, v2 := counterV1(), counterV2(true, false)
	fsmtest.RoundTrip(t, v1, v2,
		fsmtest.Sample(t, v1, "idle", CounterV1{}),
		fsmtest.Sample(t, v1, "counting", CounterV1{N: 7}),
		fsmtest.Sample(t, v1, "counting", CounterV1{N: 1000}),
	)
	for _, err := range t.errs {
		fmt.Println(err)
	}
	// Output:
	// sample 2: fsm: counter v1 -> v2, state "counting": downgrade of the upgrade: fsm: upgrade and downgrade do not round-trip: state "counting" data map[N:1000], then state "counting" data map[N:100]
}
