package upgrade

// HandoffServerMain runs the test binary as the handoff tests' sequence
// server when they start it that way; see handoff_server_test.go.
func HandoffServerMain() (code int, ran bool) { return handoffServerMain() }
