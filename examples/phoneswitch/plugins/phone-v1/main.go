// Command phone-v1 is a plugin that serves version v1 of the phone
// machine (see package phone) to the phone switch's serve --in-process=false.
package main

import (
	"github.com/hotline-go/hotline/examples/phoneswitch/phone"
	"github.com/hotline-go/hotline/plugin"
)

func main() { plugin.Serve(phone.V1()) }
