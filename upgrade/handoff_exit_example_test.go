package upgrade_test

import (
	"errors"
	"fmt"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/upgrade"
)

// A machine the old process handed over exits with ErrHandedOff: an
// orderly stop (it is Shutdown, which the System does not log and after
// which a supervisor does not restart a transient child), in which no
// terminate hook runs (it is Killed), and not a Normal exit (a linked
// actor hears of it).
func ExampleErrHandedOff() {
	reason := upgrade.ErrHandedOff // what actor.Wait returns for such a machine
	fmt.Println(errors.Is(reason, actor.Shutdown), errors.Is(reason, actor.Killed), actor.IsNormal(reason))
	fmt.Println(reason)
	// Output:
	// true true false
	// upgrade: machine handed over to the new process
}
