package fsm

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/hotline-go/hotline/internal/msgpackcheck"
)

// ErrRoundTrip is returned (wrapped, with both values) by [RoundTrip] when
// a downgrade does not give back what was upgraded.
var ErrRoundTrip = errors.New("fsm: upgrade and downgrade do not round-trip")

// RoundTrip checks that snapshot s, of version from, survives an UPGRADE to
// version to and the downgrade back: s loads in from; to's UPGRADE accepts
// it; to's downgrade returns s's state and data (equal as msgpack values);
// and upgrading that again gives what the first UPGRADE gave. It returns
// the first step that failed, wrapped; ErrRoundTrip when the values differ.
//
// Tests call it through [github.com/hotline-go/hotline/fsm/fsmtest.RoundTrip]
// with sample data; a release handler can call it on the snapshots of live
// machines before it moves them.
func RoundTrip(ctx context.Context, from, to Code, s Snapshot) error {
	fail := func(step string, err error) error {
		return fmt.Errorf("fsm: %s %s -> %s, state %q: %s: %w", from.Machine(), from.Version(), to.Version(), s.State, step, err)
	}
	if s.Machine != from.Machine() || s.Version != from.Version() || to.Machine() != from.Machine() {
		return fail("check", fmt.Errorf("%w: snapshot of %s %s", ErrWrongMachine, s.Machine, s.Version))
	}
	var orig, up, back, again []byte
	var upState, backState, againState, step string
	err := protect(func() error {
		step = "load in " + from.Version()
		in, err := from.Load(ctx, s.State, s.Data)
		if err == nil {
			orig, err = in.Encode()
		}
		if err != nil {
			return err
		}
		step = "upgrade"
		upIn, err := to.Upgrade(ctx, from.Version(), s.State, orig)
		if err == nil {
			upState = upIn.State()
			up, err = upIn.Encode()
		}
		if err != nil {
			return err
		}
		step = "downgrade"
		var data []byte
		if backState, data, err = to.Downgrade(ctx, from.Version(), upIn); err != nil {
			return err
		}
		step = "load the downgrade in " + from.Version()
		backIn, err := from.Load(ctx, backState, data)
		if err == nil {
			back, err = backIn.Encode()
		}
		if err != nil {
			return err
		}
		step = "upgrade the downgrade"
		againIn, err := to.Upgrade(ctx, from.Version(), backState, back)
		if err == nil {
			againState = againIn.State()
			again, err = againIn.Encode()
		}
		return err
	})
	if err != nil {
		return fail(step, err)
	}
	if err := sameValue(s.State, orig, backState, back); err != nil {
		return fail("downgrade of the upgrade", err)
	}
	if err := sameValue(upState, up, againState, again); err != nil {
		return fail("upgrade of the downgrade", err)
	}
	return nil
}

// sameValue compares two states and two msgpack values, as values (see
// msgpackcheck.Value: a map's keys in any order, of any type).
func sameValue(state1 string, b1 []byte, state2 string, b2 []byte) error {
	v1, err := msgpackcheck.Value(b1)
	if err != nil {
		return err
	}
	v2, err := msgpackcheck.Value(b2)
	if err != nil {
		return err
	}
	if state1 != state2 || !reflect.DeepEqual(v1, v2) {
		return fmt.Errorf("%w: state %q data %v, then state %q data %v", ErrRoundTrip, state1, v1, state2, v2)
	}
	return nil
}
