// Package pluginrpc runs code in plugin processes and calls it: the
// transport and control plane under Hotline's plugin-hosted machines. It
// knows nothing of machines: a call is a method name and bytes, answered
// with bytes. The fsm binding builds on it; nothing outside Hotline may
// import it.
//
// # The host side
//
// [New] makes a [Client] for one plugin binary and its expected SHA-256.
// [Client.Start] (or the first call) starts the process with
// hashicorp/go-plugin, which checks the checksum before running the binary
// (a fresh hash for each start; the host opens the binary first, and
// go-plugin checks and runs that file, whatever is renamed over its path
// meanwhile) and does the handshake: a magic cookie and
// wire.ProtocolVersion, so that a host and a plugin of different protocol
// versions refuse each other ([ErrProtocol]). One go-plugin net/rpc call,
// Open, then learns what the plugin serves (a [Manifest]: one machine, in
// one or more versions) and where its event socket is: a Unix socket in a
// directory that the host owns (mode 0700, the socket 0600), entered with
// a random token. The host opens a small pool of connections to it
// ([WithConns]); every call afterwards goes over the connection of its
// key, pipelined: any number of goroutines call at once, each request
// tagged with an ID, answered in any order. go-plugin remains the control plane: start,
// checksum, handshake, logs, and kill.
//
// [Client.Call] sends one call; [Client.Do] delivers it again when the
// plugin dies with it in flight. The host owns the data of its machines,
// and a call carries all the plugin needs, so a delivery again is safe.
//
// A [Loader] shares one Client among the users of one binary, and stops
// its process when the last [Handle] is released.
//
// # Ordering, deadlines, failure
//
// Each call has an ordering key (a machine's identity). The calls of a key
// always take the same connection of the pool, and the plugin runs them one
// at a time, in the order they were sent, and those of different keys
// concurrently: a slow handler holds up its own key, and the others on its
// connection only until the host notices and nudges the plugin, within 10
// to 60 milliseconds (each more slow handler ahead of them, up to 50 more).
// A call must be answered within the call timeout ([WithCallTimeout]); a
// plugin that does not answer in time is taken for hung and killed. A
// caller's context can end a call earlier; that only abandons the call,
// and its late answer is dropped, but the plugin still owes it an answer
// within the call timeout and a grace (half of it), or is taken for hung.
// An answer to no call (an ID never sent, or answered already) is a
// malformed message.
//
// A plugin that crashes, is killed, hangs, breaks a stream (any
// connection of the pool) or sends a malformed message is dead: every call in flight to it fails with
// [ErrPluginDied] (and the cause: [ErrTimeout], [ErrMalformed], an I/O
// error), and the next call starts a new process, after a backoff that
// doubles with each failure in a row ([WithRestartBackoff]). After more
// than [WithMaxRestarts] failures in a row with no call answered between,
// the Client gives up with [ErrCrashLoop]. A handler's panic is not a
// death: the plugin recovers it and answers a [*PanicError]; an error it
// returns comes back as a [*RemoteError]. Every other error is an [*Error]
// naming the plugin.
//
// What the plugin writes to stdout and stderr reaches the host's logger
// ([WithLogger]). Anything it writes to stdout before [Serve] breaks the
// handshake.
//
// # The plugin side
//
// A plugin's main calls [Serve] with its [Manifest] and a [Handler]. Serve
// returns when the host stops the plugin, or once the host is gone (its
// event socket closed). A panic in a handler is recovered per call, so the
// process survives it.
//
// # Wire
//
// The messages, their msgpack encoding and the frames of the event socket
// are defined in internal/wire and described byte by byte in
// doc/plugins.md, with the reasons for this design and its measurements.
package pluginrpc
