// Package supervisor is Erlang/OTP's supervisor for Hotline's actors:
// trees of processes in which a supervisor starts its children in order,
// restarts the ones that fail by a strategy, gives up when they fail too
// often, and stops them in reverse order. A supervisor is an actor, so
// trees nest, and the same code supervises plain actors and fsm machines.
//
// # A tree
//
// [Start] starts a supervisor and, before it returns, its children in the
// order of their [ChildSpec]s. A spec's Start function starts one child
// linked to its supervisor; [StartContext.Spawn] does the linking:
//
//	root, err := supervisor.Start(sys, supervisor.OneForOne, []supervisor.ChildSpec{
//		{ID: "db", Start: func(sc supervisor.StartContext) (actor.Ref, error) {
//			return sc.Spawn(newDB())
//		}},
//		supervisor.SubtreeSpec("calls", supervisor.RestForOne, callSpecs),
//	}, supervisor.WithIntensity(3, 10*time.Second))
//
// If a child fails to start, the children already started are stopped in
// reverse order and Start returns a *[StartError] naming it.
//
// # Strategies and restart types
//
// When a child exits, its [Restart] type says whether it is restarted:
// [Permanent] always, [Transient] only after an abnormal exit (not
// actor.Normal, not actor.Shutdown nor an error wrapping it), [Temporary]
// never. The [Strategy] says what else happens: [OneForOne] restarts the
// child alone; [OneForAll] stops the others in reverse order and starts
// all again in order; [RestForOne] does that for the children started
// after it; [SimpleOneForOne] is one-for-one for many children of one
// spec, started at run time with [StartChild].
//
// # Restart intensity and backoff
//
// A supervisor allows at most N restarts in a period ([WithIntensity];
// OTP's default, 1 in 5 s). The restart that is one too many makes it stop
// all its children and exit with an *[IntensityError] that names the
// child and its last reason; the supervisor's own supervisor then decides,
// and so failure climbs the tree until a level can handle it. The
// arithmetic is a plain function of the restart times and the time now.
//
// [WithBackoff] delays restarts (min·2^(k−1), capped at max, for the k-th
// consecutive restart of a child), as Akka's backoff supervisor does. A
// restart is counted when the child exits, not when its delay ends, so a
// backoff never hides a crash loop from the intensity window.
//
// # Shutdown
//
// A supervisor that is stopped (actor.Stop, System.Shutdown, its parent's
// exit, or its own intensity) stops its children in reverse start order,
// each within its shutdown budget ([ChildSpec.Shutdown]): actor.Stop with
// reason actor.Shutdown, then actor.Kill when the budget runs out, or
// [BrutalKill] at once, or [Infinity] for subtrees. A simple-one-for-one
// supervisor stops its children all at once.
//
// # Dynamic children
//
// [AddChild], [TerminateChild], [RestartChild], [DeleteChild],
// [WhichChildren] and [CountChildren] change and inspect a running
// supervisor; [StartChild] starts a simple-one-for-one supervisor's
// children. They are calls to the supervisor's actor, and take a context.
//
// # Finding processes
//
// [Walk] visits every child in a tree, descending into subtrees, and
// [Workers] lists the running workers with their supervisor and spec. They
// are the supported way to find, say, every running machine of one name
// for an upgrade, without reaching into a supervisor's state.
//
// # Where Go differs from OTP
//
// Go cannot preempt a goroutine, so a kill takes effect when the child's
// current handler returns, and cannot interrupt a terminate hook that has
// begun: a shutdown budget bounds the wait before the kill, not the
// child's life. A killed child that still has not exited after
// [WithKillWait] is logged, unlinked and abandoned, so that one stuck
// handler cannot hold its whole tree. Start functions and the children's
// Init run on the supervisor's goroutine: they, and a child being
// stopped, must not make calls to their own supervisor without a
// deadline. A supervisor cannot know its parent from a link alone: it is
// told by [LinkTo] (which [SubtreeSpec] passes), or by its parent after
// the start. An exit signal sent with actor.SendExit has no sender: a
// supervisor takes one that is not Normal as its parent's. See
// doc/supervisor.md for the whole list.
package supervisor
