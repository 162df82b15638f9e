package actor

import (
	"context"
	"errors"
	"testing"
)

// recorder traps exits and forwards what it receives.
type recorder struct{ got chan any }

func (r recorder) Init(c *Context) error { c.TrapExits(true); return nil }

func (r recorder) Receive(_ *Context, msg any) { r.got <- msg }

// An exit signal handed off on the exiting worker comes before what was
// sent to the claimed link between the claim and the hand-off (a caller
// that saw the exit and then sent to the supervisor): the Exit takes the
// place of the claim, not the end of the mailbox. The steps of exit are
// run one by one here, with a Send between the two.
func TestHandOffExitBeforeWhatCameSinceTheClaim(t *testing.T) {
	s := quietSystem(t)
	got := make(chan any, 4)
	sup := mustSpawn(t, s, recorder{got})
	child, err := s.Spawn(BehaviorFunc(func(*Context, any) {}), LinkTo(sup))
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	held, seq := child.a.signalLink(sup.a, handOffSignal, boom)
	if held != sup.a {
		t.Fatal("the idle supervisor was not claimed")
	}
	if err := Send(sup, "after"); err != nil {
		t.Fatal(err)
	}
	child.a.handOff(held, boom, &Context{worker: true}, seq)
	first := <-got
	if e, ok := first.(Exit); !ok || e.From != child || !errors.Is(e.Reason, boom) {
		t.Fatalf("first message: %#v, want the child's Exit", first)
	}
	if m := <-got; m != "after" {
		t.Fatalf("second message: %#v", m)
	}
	if err := Stop(context.Background(), child, nil); err != nil {
		t.Fatal(err)
	}
}
