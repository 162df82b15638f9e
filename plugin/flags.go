package plugin

import (
	"slices"

	"github.com/hotline-go/hotline/fsm"
)

// Feature flags (doc/flags.md). The host evaluates a plugin-hosted
// machine's flags and sends the names of those that are on with each
// event (wire.MachineCall.Flags); in the plugin, a flag-reading handler
// ([fsm.OnFlags]) gets an fsm.Flags that answers from that list.

// UseFlags keeps the machine's flags: each event sends the plugin those
// that are on for the machine when the event is handled.
func (in *instance) UseFlags(f fsm.Flags) { in.flags = f }

// flagsOn returns the names of the flags on for the machine, in a slice
// the instance reuses from one event to the next.
func (in *instance) flagsOn() []string {
	in.on = in.flags.AppendOn(in.on[:0])
	return in.on
}

// onList is the plugin side's fsm.FlagSource: the flags the host sent,
// for the machine of the call (so the ID is not needed).
type onList []string

func (l onList) Flag(name, _ string) bool { return slices.Contains(l, name) }

func (l onList) AppendOn(dst []string, _ string) []string { return append(dst, l...) }

// giveFlags hands the call's flags to an instance that reads them. With
// none on there is nothing to hand: an instance just loaded reads every
// flag off.
func giveFlags(in fsm.Instance, on []string) {
	if len(on) == 0 {
		return
	}
	if u, ok := in.(fsm.FlagUser); ok {
		u.UseFlags(fsm.NewFlags(onList(on), ""))
	}
}
