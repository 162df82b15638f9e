package actortest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/actor/actortest"
)

// A test of a forwarding actor: the Probe stands in for the receiver.
func Example() {
	t := &testing.T{} // in a real test, the test's own t, whose end shuts sys down
	sys := actortest.NewSystem(t)
	defer sys.Shutdown(context.Background()) // here, there is no end of test
	probe := actortest.NewProbe(t, sys)
	fwd, _ := sys.Spawn(actor.BehaviorFunc(func(c *actor.Context, msg any) {
		actor.Send(probe.Ref(), fmt.Sprintf("fwd: %v", msg))
	}))
	actor.Send(fwd, "ring")
	fmt.Println(probe.Next())
	// Output: fwd: ring
}
