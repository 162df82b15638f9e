// Command plugin serves package machine's two versions: the plugin of the
// tests of package plugin.
package main

import (
	testmachine "github.com/hotline-go/hotline/internal/plugintest/machine"
	"github.com/hotline-go/hotline/plugin"
)

func main() { plugin.Serve(testmachine.V1(), testmachine.V2()) }
