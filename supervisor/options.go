package supervisor

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hotline-go/hotline/actor"
)

// An Option configures a supervisor at [Start]. Options that are given
// nonsense (a negative intensity, a period that is not positive) panic:
// that is a mistake in the program, made at setup.
type Option func(*config)

type config struct {
	intensity  int
	period     time.Duration
	backoffMin time.Duration
	backoffMax time.Duration
	jitter     float64
	killWait   time.Duration
	name       string
	parent     actor.Ref
	random     func() float64 // for jitter; a test seam
}

func newConfig(opts []Option) config {
	c := config{
		intensity: 1,
		period:    5 * time.Second,
		killWait:  DefaultShutdown,
		random:    rand.Float64,
	}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithIntensity sets the restart intensity: if more than n restarts happen
// within period, the supervisor stops all its children and exits with an
// *[IntensityError]. The default is OTP's: 1 restart in 5 seconds. n may
// be 0 (no restart at all); period must be positive.
func WithIntensity(n int, period time.Duration) Option {
	if n < 0 || period <= 0 {
		panic(fmt.Sprintf("supervisor: WithIntensity(%d, %v): n must be ≥ 0 and period > 0", n, period))
	}
	return func(c *config) { c.intensity, c.period = n, period }
}

// WithBackoff delays restarts, as Akka's backoff supervisor does: the k-th
// consecutive restart of a child waits min·2^(k−1), capped at max. A child
// that ran for at least max before it exited starts again from min. While
// it waits the child is [Restarting], and the restart has already been
// counted: intensity counts exits when they happen, so a backoff spaces
// restarts out but never hides a crash loop from the intensity window.
// The default is no backoff: restart at once, as OTP does. min must be
// positive and max ≥ min.
func WithBackoff(min, max time.Duration) Option {
	if min <= 0 || max < min {
		panic(fmt.Sprintf("supervisor: WithBackoff(%v, %v): min must be > 0 and max ≥ min", min, max))
	}
	return func(c *config) { c.backoffMin, c.backoffMax = min, max }
}

// WithJitter stretches each backoff delay by a random part of it, up to
// factor×delay (Akka's randomFactor), so that children that crashed
// together do not restart together. The default is 0: delays are exact,
// which keeps tests deterministic. It has no effect without [WithBackoff].
func WithJitter(factor float64) Option {
	if factor < 0 {
		panic(fmt.Sprintf("supervisor: WithJitter(%v): factor must be ≥ 0", factor))
	}
	return func(c *config) { c.jitter = factor }
}

// WithKillWait sets how long the supervisor waits for a child it has
// killed (with [BrutalKill], or after the child's shutdown budget ran out)
// to exit. Go cannot preempt a handler: a kill takes effect when the
// child's current handler returns, and a handler blocked for good (on a
// call to this very supervisor, say) would hold the supervisor for good.
// After this wait the supervisor logs the child as abandoned, unlinks it
// and goes on; the child exits when its handler returns. The default is
// [DefaultShutdown] (5 s); [Infinity] always waits, as OTP does.
func WithKillWait(d time.Duration) Option {
	if d <= 0 {
		panic(fmt.Sprintf("supervisor: WithKillWait(%v): must be > 0", d))
	}
	return func(c *config) { c.killWait = d }
}

// WithName registers the supervisor under name in its System (see
// actor.WithName). The default is no name.
func WithName(name string) Option {
	return func(c *config) { c.name = name }
}

// LinkTo links the supervisor to parent before it starts its children,
// and makes parent the supervisor's parent: when parent exits, for any
// reason, the supervisor stops its children in order and exits with the
// same reason, as an OTP supervisor does when its parent exits. Exit
// signals from other linked actors that are not children are ignored, as
// in OTP. [SubtreeSpec] passes LinkTo for you. The default is no parent.
func LinkTo(parent actor.Ref) Option {
	return func(c *config) { c.parent = parent }
}

// withRandom replaces the jitter's random source; for tests.
func withRandom(f func() float64) Option {
	return func(c *config) { c.random = f }
}
