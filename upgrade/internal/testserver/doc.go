// Package testserver is the service that upgrade's process tests and its
// restart benchmark replace on SIGHUP. It is started as a real process (the
// test binary, or the benchmark binary, re-executed with [RoleEnv] set) and
// serves through an [upgrade.Restarter]:
//
//   - a line echo over TCP and a Unix socket, with a graceful goodbye: when
//     the process drains it sends "bye" on each connection, answers every
//     request it still reads, and closes when the client has closed, so no
//     request it accepted is lost (see [Client]);
//   - a datagram echo over UDP;
//   - HTTP: /healthz ([upgrade.Restarter.HealthHandler]), POST /upgrade
//     ([upgrade.Restarter.UpgradeHandler]) and /hello (a plain handler), all
//     behind [upgrade.Restarter.LameDuck];
//   - one "plugin" child process, stopped by a drain hook.
//
// The file named by [Config.Dir]/mode makes the next generation misbehave:
// "hang" inherits the sockets and never calls Ready.
package testserver
