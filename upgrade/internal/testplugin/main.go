// Command testplugin is the plugin binary of package upgrade's tests and
// benchmarks: it serves the versions of internal/plugintest/machine's
// counter that its build names, so that one source gives binaries serving
// v1 only, v2 only, or both:
//
//	go build -ldflags "-X main.serve=v2" -o counter-v2 ./upgrade/internal/testplugin
//
// serve is a comma-separated list (default "v1,v2"). A -X of main.tag
// changes the binary (and so its checksum) without changing what it serves.
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/hotline-go/hotline/fsm"
	testmachine "github.com/hotline-go/hotline/internal/plugintest/machine"
	"github.com/hotline-go/hotline/plugin"
)

var (
	serve = "v1,v2"
	tag   = ""
)

func main() {
	var codes []fsm.Code
	for _, v := range strings.Split(serve, ",") {
		switch v {
		case "v1":
			codes = append(codes, testmachine.V1())
		case "v2":
			codes = append(codes, testmachine.V2())
		default:
			fmt.Fprintf(os.Stderr, "testplugin %s: unknown version %q\n", tag, v)
			os.Exit(2)
		}
	}
	plugin.Serve(codes...)
}
