package upgrade_test

import "time"

// Polling bounds for what happens on other actors' goroutines (an exit
// reaching the handler's watcher). Real time: the machines run on the
// actor system's workers, outside any synctest bubble.
const (
	relWait = 5 * time.Second
	relTick = time.Millisecond
)
