package plugin_test

import (
	"fmt"

	"github.com/hotline-go/hotline/plugin"
)

// A reply from a plugin-hosted machine is a generic msgpack value; As
// decodes it into the caller's own type.
func ExampleAs() {
	type Count struct {
		N     int
		State string
	}
	reply := map[string]any{"N": int8(5), "State": "idle"} // as fsm.Call returns it
	c, err := plugin.As[Count](reply)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%+v\n", c)
	// Output: {N:5 State:idle}
}

// An Event is a payload that crossed from a plugin undecoded: it is
// dispatched by its name, and decoded on demand.
func ExampleEvent() {
	type Fired struct{ N int }
	ev := plugin.Event{Name: "Fired", Raw: []byte{0x81, 0xa1, 'N', 0x07}}
	var f Fired
	if err := ev.Decode(&f); err != nil {
		panic(err)
	}
	fmt.Println(ev.EventName(), f.N)
	// Output: Fired 7
}

// To profile a plugin process, set EnvCPUProfile in the host's
// environment before the plugin starts, as in
//
//	HOTLINE_PLUGIN_CPUPROFILE=/tmp/phone.cpu ./host
//
// Each plugin process then writes /tmp/phone.cpu.<pid> when the host stops
// it, for go tool pprof.
func ExampleEnvCPUProfile() {
	fmt.Println(plugin.EnvCPUProfile)
	// Output: HOTLINE_PLUGIN_CPUPROFILE
}

// To trace a plugin process (goroutines, system calls, the scheduler), set
// EnvTrace in the host's environment before the plugin starts, as in
//
//	HOTLINE_PLUGIN_TRACE=/tmp/phone.trace ./host
//
// Each plugin process then writes /tmp/phone.trace.<pid> when the host
// stops it, for go tool trace.
func ExampleEnvTrace() {
	fmt.Println(plugin.EnvTrace)
	// Output: HOTLINE_PLUGIN_TRACE
}
