// Package fsmtest helps test state machines of package
// [github.com/hotline-go/hotline/fsm]: that an UPGRADE and its downgrade
// round-trip on sample data ([RoundTrip]), and how a machine behaves,
// started in a System of its own that the test shuts down ([Start]).
//
// # Round trips
//
// A hot upgrade runs code that production runs once, on data no test saw:
// the UPGRADE of version N+1, and the downgrade that a rollback runs. Give
// [RoundTrip] samples of version N's data, as many states and shapes as you
// can think of, and it checks both directions on each:
//
//	func TestPhoneUpgrade(t *testing.T) {
//		fsmtest.RoundTrip(t, phone.V1(), phone.V2(),
//			fsmtest.Sample(t, phone.V1(), "off", phone.DataV1{}),
//			fsmtest.Sample(t, phone.V1(), "in_progress", phone.DataV1{Digits: []int{1, 2, 3}, Calls: 1}),
//		)
//	}
//
// # Machines under test
//
// [Start] runs a machine as it runs in production, on an actor. Timeouts
// use the actor's timers: run tests that wait for them inside a
// [testing/synctest] bubble, call Start inside the bubble, and let the fake
// clock run with [time.Sleep] followed by [synctest.Wait].
package fsmtest
