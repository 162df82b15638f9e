package upgrade

// CanaryOnPick makes f run just before the canary picks its canaries.
func CanaryOnPick(f func()) CanaryOption { return func(c *canary) { c.onPick = f } }
