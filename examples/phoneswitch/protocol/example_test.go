package protocol_test

import (
	"fmt"

	"github.com/hotline-go/hotline/examples/phoneswitch/protocol"
)

func ExampleParseCommand() {
	c, err := protocol.ParseCommand("AUDIO 7 hello")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%#v\n", c)
	_, err = protocol.ParseCommand("KEY *")
	fmt.Println(err)
	// Output:
	// protocol.Audio{Seq:0x7, Payload:"hello"}
	// protocol: bad arguments: KEY: want one key, 0-9 or #
}
