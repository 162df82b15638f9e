// Package upgrade replaces a running Hotline service without stopping it.
//
// This part of the package replaces the host binary itself: on SIGHUP, or
// the admin command, a new process starts from the same executable path,
// inherits every listening socket, and says when it is ready; only then does
// the old process stop accepting, drain its in-flight work and exit. Not one
// connection is refused on the way. It is built on
// [github.com/cloudflare/tableflip] (v1.2.3).
//
// # Use
//
// Create one [Restarter] in main, before anything listens. Listen through it,
// register what must be stopped when the process drains, and say when the
// process can serve:
//
//	r, err := upgrade.NewRestarter(
//		upgrade.WithPIDFile("/run/svc/svc.pid"),
//		upgrade.WithLameDuck(500*time.Millisecond),
//	)
//	if err != nil { ... }
//	defer r.Stop()
//	ln, err := r.Listen("tcp", ":8080")
//	...
//	srv := &http.Server{Handler: r.LameDuck(mux)}
//	go srv.Serve(ln)
//	r.OnDrain(srv.Shutdown)
//	if err := r.Ready(); err != nil { ... }
//	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
//	defer stop()
//	return r.Run(ctx) // returns once a new process took over, or on SIGTERM, and this one drained
//
// To upgrade, replace the executable file, then send SIGHUP (systemd:
// ExecReload=/bin/kill -HUP $MAINPID) or call [Restarter.Upgrade].
//
// # The rules
//
//   - One upgrade at a time. A request while one runs is refused with
//     [ErrUpgradeInProgress] and a log line, not queued; so is one while the
//     process replaced by the last upgrade still drains: a long drain delays
//     the next upgrade.
//   - The new process must call [Restarter.Ready] within the upgrade timeout
//     ([WithUpgradeTimeout]); if it exits or times out, it is gone (killed),
//     the old process keeps serving, logs why, and [Restarter.Upgrade] and
//     [Restarter.LastAttempt] say why ([ErrChildFailed], [ErrChildTimeout]).
//   - When the new process is ready, the old one stops accepting at once (its
//     listeners stay open, so a connection in the queue is not lost), then
//     drains: the lame-duck period ([WithLameDuck]), the [Restarter.OnDrain]
//     hooks in reverse order within the drain deadline ([WithDrainTimeout]),
//     then it closes its sockets.
//   - The PID file ([WithPIDFile]) always names the process that serves.
//   - A drain hook stops what the process started: its servers, and its
//     plugin processes, so that none is orphaned (an orphaned go-plugin
//     process dies on its next write to stderr).
//
// # Lame duck
//
// [Restarter.HealthHandler] answers 503 "starting" until Ready, 200 "ready"
// while the process serves, and 503 "draining" from the handoff (or a
// shutdown) on, so that a load balancer or a Kubernetes readiness probe takes
// the process out of rotation. [Restarter.LameDuck] wraps HTTP handlers so
// that keep-alive clients are asked to reconnect while the process drains.
//
// # State handoff
//
// A [Handoff] moves live state machines and the connections they own to the
// new process: the old process pauses the connections, suspends and images
// the machines ([fsm.CaptureSuspended]) and sends them, with the
// connections' descriptors and unread bytes, over a Unix socket; the new
// one restores them ([Handoff.Receive], through UPGRADE where its code is
// newer) before Ready. If the new process fails first, the old one resumes
// everything. The format is internal/handoff's, described byte by byte in
// doc/binary-upgrade.md.
//
// # Limits
//
// Connections accepted by the old process and not adopted by a [Handoff]
// stay with it until they end or the drain deadline passes. net/http's Shutdown
// can close a keep-alive connection on which a request is arriving; a client
// that does not retry sees an error (give [WithLameDuck] some time). Only one
// Restarter may exist in a process. Not supported on Windows.
//
// doc/binary-upgrade.md in the repository shows a complete service, a
// systemd unit, and Kubernetes probe and preStop settings.
//
// # Release handler
//
// The other part of the package replaces the code of running state
// machines ([fsm]) without stopping them, as OTP's release_handler does. A
// [ReleaseHandler] knows, per machine name, the registered versions
// (oldest first), which is current (new machines start on it) and which
// is permanent (a restarted host comes back on it), and which machines run
// each:
//
//	h, err := upgrade.NewReleaseHandler(sys, upgrade.WithJournal("/var/lib/svc/release"))
//	h.Register(phoneV1) // an *fsm.Machine, or any fsm.Code
//	h.Register(phoneV2)
//	ref, err := h.Start(ctx, "phone", fsm.WithID("555-0100")) // a supervisor child's Start
//	rep, err := h.DryRun(ctx, "phone", "v2")   // UPGRADE on snapshots; nothing changes
//	rep, err := h.Upgrade(ctx, "phone", "v2") // the consistent cut
//	err = h.Confirm(ctx, "phone")              // v2 permanent; v1 unloaded when idle
//	rep, err = h.Rollback(ctx, "phone")        // or back, through the downgrades
//
// The rules:
//
//   - [AllAtOnce] (the default [Strategy]) suspends every selected
//     machine, changes them all, then resumes them all: no machine on the
//     old version ever talks to one on the new. If one change fails, every
//     machine changed is reverted exactly ([fsm.Revert]: no event was
//     handled in between), the new version is unloaded, and the error
//     wraps [ErrRolledBack] and a [*MachineError] naming the machine.
//     [Rolling] moves k machines at a time, each held for its own change
//     only, and briefly: its UPGRADE runs on a copy of its data while it
//     runs ([fsm.Stager]); [Canary] moves a few, watches their exits, error replies and
//     a health check, then goes on or moves them back by itself;
//     [NewSessions] moves none and starts a share of the new machines on
//     the new version; [Shadow] moves none and mirrors their events to
//     the new version on a copy of their data, counting divergences.
//   - Pre-flight: before anything changes, a chain of UPGRADE handlers
//     from every version the machines run to the target, and of
//     downgrades back, must exist ([fsm.Paths]), or [ErrNoPath]. v1 -> v3
//     runs v1 -> v2 -> v3 in one change where v3 reads only v2;
//     [ReleaseHandler.Restore] uses the same chain for a snapshot handed
//     over by a binary restart.
//   - One upgrade, rollback or confirm per machine name at a time; another
//     is refused with [ErrBusy]. A machine started meanwhile starts before
//     the cut (and is moved) or after it (on the new version); one that
//     exits meanwhile is skipped.
//   - Any number of versions coexist. A version is unloaded (closed, if it
//     is an io.Closer: a plugin process) when no machine runs it and it is
//     neither current nor permanent. No machine is killed to unload code.
//   - [Policy] per machine name: migrate (default), pin, restart.
//   - With [WithJournal], every move is journaled; a host that died
//     mid-upgrade has it undone at the next start, one that died
//     mid-rollback has it resumed, an unconfirmed upgrade comes back on
//     the permanent version, and [ReleaseHandler.Recovered] says which
//     (and names a version the journal names that is not registered:
//     the first registered one runs instead). A move whose commit could
//     not be journaled has taken effect, and says so ([ErrNotJournaled]).
//   - [ReleaseHandler.ScanPlugins] registers the versions served by the
//     plugin binaries of a directory, each checked against its SHA256SUMS
//     before it runs; a rescan adds new ones without a restart.
//   - Each move is logged with log/slog and counted in [Metrics]
//     ([PromMetrics] serves them to Prometheus); [ReleaseHandler.ServeAdmin]
//     serves status, upgrade (with a [StrategySpec]), dry run, rollback,
//     confirm and the shadow's report, with streamed progress and
//     decisions, on a Unix socket of mode 0600 ([AdminClient] is its
//     client).
//
// doc/upgrades.md in the repository teaches how to write, test and roll
// out a new version.
package upgrade
