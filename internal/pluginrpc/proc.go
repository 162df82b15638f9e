package pluginrpc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/hotline-go/hotline/internal/wire"
)

// maxSocketPath is the longest path of a Unix socket on Linux: sun_path
// holds 108 bytes with the terminating NUL.
const maxSocketPath = 107

// socketNameRoom is what a socket's name may add to its directory's path:
// go-plugin's "/plugin" and up to 10 digits, our "/ev-" and 16 hex digits.
const socketNameRoom = 20

// proc is one run of the plugin process: the go-plugin client that started
// it (the control plane) and the pool of event connections.
//
// The connections are one transport. A call goes to the connection of its
// key (connFor), so the calls of one key keep their order; the death of any
// connection is the death of the process: connDied fails the others with
// the same error and tells the Client, once.
type proc struct {
	gp       *plugin.Client
	cmd      *exec.Cmd
	dir      string // owned by the host, removed by kill
	conns    []*conn
	pid      int
	manifest Manifest
	stdout   *lineWriter // the plugin's stdout and stderr, to the logger
	stderr   *lineWriter
	stopping atomic.Bool // set when the host stops the process on purpose
	dead     atomic.Bool // a conn died: the others were failed, the Client told
	onDeath  func(*proc, error)
}

// connFor returns the connection that carries the calls of key: always the
// same one for a key (FNV-1a of the key, modulo the pool's size), so that
// the plugin, which keeps order per connection, sees a key's calls in the
// order they were sent.
func (p *proc) connFor(key string) *conn {
	if len(p.conns) == 1 {
		return p.conns[0]
	}
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return p.conns[h%uint32(len(p.conns))]
}

// connDied is every conn's onDeath: the first death fails the other conns
// with the same error (their calls in flight may be delivered again) and
// tells the Client.
func (p *proc) connDied(err error) {
	if !p.dead.CompareAndSwap(false, true) {
		return
	}
	for _, c := range p.conns {
		c.fail(err) // a no-op for the conn that died
	}
	if dieHook != nil && !dieHook() {
		return
	}
	p.onDeath(p, err)
}

// dieHook, if set, runs at a process's first conn death, after every call
// in flight was failed, and says whether the Client is told; a test seam,
// to play a Client told late (here: never).
var dieHook func() bool

// die kills every conn of the process for cause, as the death of one does.
func (p *proc) die(cause error) { p.connDied(&diedError{cause: cause}) }

// launch starts a process of the plugin and connects to it. onDeath is
// given to the conn. On error nothing is left running, and the error wraps
// one of ErrNotFound, ErrChecksum, ErrHandshake, ErrProtocol,
// ErrWrongMachine, ErrSocketDir or ErrStart. The process is killed when
// abort ends (Client.Close), also while it starts.
func launch(abort context.Context, path string, sum []byte, cfg *config, log *slog.Logger, onDeath func(*proc, error)) (_ *proc, err error) {
	// The binary is opened once: go-plugin checks the checksum of a path,
	// then executes the path, and a file renamed over it in between would
	// run unchecked. Both go to the file opened here instead (pinned).
	bin, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrStart, err)
	}
	defer func() { _ = bin.Close() }() // the process has its own descriptor of it
	if len(sum) != sha256.Size {
		return nil, fmt.Errorf("%w: want a SHA-256 checksum of %d bytes, have %d", ErrChecksum, sha256.Size, len(sum))
	}
	dir, err := os.MkdirTemp(cfg.socketDir, "hl-")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSocketDir, err)
	}
	if len(dir)+socketNameRoom > maxSocketPath {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("%w: %q is %d bytes long, which leaves no room for a socket name within %d",
			ErrSocketDir, dir, len(dir), maxSocketPath)
	}

	exe, extra := pinned(bin, dir, filepath.Base(path))
	cmd := exec.CommandContext(abort, exe)
	cmd.Args = []string{path}
	cmd.ExtraFiles = extra
	cmd.Env = pluginEnv(dir, cfg.env)
	p := &proc{cmd: cmd, dir: dir, onDeath: onDeath,
		stdout: newLineWriter(log, "stdout"), stderr: newLineWriter(log, "stderr")}
	p.gp = plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: handshake(wire.ProtocolVersion),
		Plugins:         plugin.PluginSet{pluginName: &controlPlugin{}},
		Cmd:             cmd,
		// pluginEnv has the host's environment, without go-plugin's socket
		// variable; and a fresh hash each start (a used one fails).
		SkipHostEnv:      true,
		SecureConfig:     &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolNetRPC},
		StartTimeout:     cfg.startTimeout,
		Logger:           &hclogAdapter{l: log, stopping: &p.stopping, abort: abort},
		SyncStdout:       p.stdout,
		SyncStderr:       p.stderr,
	})
	defer func() {
		if err != nil {
			p.kill(true)
		}
	}()
	deadline := time.Now().Add(cfg.startTimeout)

	if startHook != nil {
		startHook()
	}
	rpcClient, err := p.gp.Client()
	if err != nil {
		return nil, startError(exe, sum, err)
	}
	if p.pid, err = strconv.Atoi(p.gp.ID()); err != nil {
		return nil, fmt.Errorf("%w: plugin id %q: %w", ErrStart, p.gp.ID(), err)
	}
	raw, err := rpcClient.Dispense(pluginName)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	ctl, ok := raw.(*controlClient)
	if !ok {
		return nil, fmt.Errorf("%w: dispensed a %T", ErrHandshake, raw)
	}
	hello := wire.Hello{Protocol: wire.ProtocolVersion, SocketDir: dir, Conns: cfg.conns}
	reply, err := ctl.open(hello.Append(nil), time.Until(deadline))
	if err != nil {
		if strings.Contains(err.Error(), "protocol version mismatch") {
			return nil, fmt.Errorf("%w: %v", ErrProtocol, err)
		}
		return nil, fmt.Errorf("%w: opening the event socket: %v", ErrHandshake, err)
	}
	var welcome wire.Welcome
	if err := welcome.Decode(reply); err != nil {
		return nil, fmt.Errorf("%w: %w: %w", ErrHandshake, ErrMalformed, err)
	}
	if welcome.Protocol != wire.ProtocolVersion {
		return nil, fmt.Errorf("%w: host speaks %d, plugin speaks %d", ErrProtocol, wire.ProtocolVersion, welcome.Protocol)
	}
	if cfg.machine != "" && welcome.Machine != cfg.machine {
		return nil, fmt.Errorf("%w: want %q, the plugin serves %q", ErrWrongMachine, cfg.machine, welcome.Machine)
	}
	if filepath.Dir(welcome.Socket) != dir || len(welcome.Token) != wire.TokenSize {
		return nil, fmt.Errorf("%w: the plugin offered socket %q with a token of %d bytes", ErrHandshake, welcome.Socket, len(welcome.Token))
	}
	p.manifest = Manifest{Machine: welcome.Machine, Versions: welcome.Versions}

	slots := make(chan struct{}, cfg.maxInFlight)
	for i := range cfg.conns {
		c, err := dialConn(welcome.Socket, welcome.Token, i, deadline)
		if err != nil {
			return nil, fmt.Errorf("%w: event connection %d of %d: %w", ErrStart, i, cfg.conns, err)
		}
		p.conns = append(p.conns, newConn(c, wire.NewReader(c, 64<<10), slots, cfg.callTimeout,
			func() { ctl.nudge(i) }, p.connDied))
	}
	return p, nil
}

// startHook, if set, runs once the binary is opened, before go-plugin
// checks and starts it; a test seam.
var startHook func()

// pinned returns the path by which the host and the process both reach
// bin itself, whatever is at its name: a symbolic link to
// /proc/self/fd/N, where N is bin's descriptor in the host and in the
// process, which inherits it at the same number (the returned ExtraFiles:
// file 3+i is the process's descriptor 3+i). "self" is resolved by whoever
// opens the link: the host's checksum is of bin, and the kernel executes
// bin (a script's interpreter opens the path, and finds it too). The link
// is dir/bin/name, so that the process's name (its comm, which ps and
// /proc show) is the binary's, not N. Where there is no /proc, or the link
// cannot be made, it returns bin's name.
func pinned(bin *os.File, dir, name string) (string, []*os.File) {
	fd := int(bin.Fd())
	target := "/proc/self/fd/" + strconv.Itoa(fd)
	if fd < 3 {
		return bin.Name(), nil
	}
	if _, err := os.Stat(target); err != nil {
		return bin.Name(), nil
	}
	link := filepath.Join(dir, "bin", name)
	if err := os.Mkdir(filepath.Dir(link), 0o700); err != nil {
		return bin.Name(), nil
	}
	if err := os.Symlink(target, link); err != nil {
		return bin.Name(), nil
	}
	extra := make([]*os.File, fd-2)
	extra[fd-3] = bin
	return link, extra
}

// dialConn connects to the event socket at path and presents the token
// for the connection of index i.
func dialConn(path string, token []byte, i int, deadline time.Time) (net.Conn, error) {
	d := net.Dialer{Deadline: deadline}
	nc, err := d.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("dialing the event socket: %w", err)
	}
	auth, err := wire.AppendFrame(nil, &wire.Auth{Token: token, Conn: i})
	if err == nil {
		if err = nc.SetWriteDeadline(deadline); err == nil {
			_, err = nc.Write(auth)
		}
	}
	if err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("authenticating on the event socket: %w", err)
	}
	return nc, nil
}

// pluginEnv is the host's environment for the plugin, with go-plugin's
// socket directory set to dir.
func pluginEnv(dir string, extra []string) []string {
	env := make([]string, 0, len(os.Environ())+1+len(extra))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envSocketDir+"=") {
			env = append(env, kv)
		}
	}
	env = append(env, envSocketDir+"="+dir)
	return append(env, extra...)
}

// startError maps an error of go-plugin's start to this package's errors.
// go-plugin says most of them in text only, on several lines.
func startError(path string, sum []byte, err error) error {
	var lines []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	msg := strings.Join(lines, "; ")
	switch {
	case errors.Is(err, plugin.ErrChecksumsDoNotMatch):
		if have, herr := fileSum(path); herr == nil {
			return fmt.Errorf("%w: the binary's SHA-256 is %x, want %x", ErrChecksum, have, sum)
		}
		return fmt.Errorf("%w: want SHA-256 %x", ErrChecksum, sum)
	case strings.HasPrefix(msg, "error verifying checksum"):
		return fmt.Errorf("%w: %s", ErrChecksum, msg)
	case strings.Contains(msg, "incompatible API version"):
		return fmt.Errorf("%w: %s", ErrProtocol, msg)
	case strings.Contains(msg, "Unrecognized remote plugin message"),
		strings.Contains(msg, "plugin exited before we could connect"),
		strings.Contains(msg, "timeout while waiting for plugin to start"),
		strings.Contains(msg, "incompatible core API version"),
		strings.Contains(msg, "unsupported plugin protocol"):
		return fmt.Errorf("%w: %s", ErrHandshake, msg)
	}
	return fmt.Errorf("%w: %s", ErrStart, msg)
}

// fileSum is the SHA-256 of a file.
func fileSum(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// FileChecksum returns the SHA-256 of the file at path, as [New] expects
// it. Compute it where the binary is built or published, not just before
// loading it, or the check proves nothing.
func FileChecksum(path string) ([]byte, error) { return fileSum(path) }

// ParseChecksum decodes a SHA-256 checksum written in hex (as sha256sum
// prints it).
func ParseChecksum(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("%w: %q is not a SHA-256 in hex", ErrChecksum, s)
	}
	return b, nil
}

// killDead kills a process that died with err, a *diedError. Its conns
// fail their calls in flight with err first, as connDied does (which may
// still be on its way to them: the Client can learn of a death from a Do
// woken by it before): kill alone would fail them with ErrClosed, which is
// a Close's, and Do does not deliver such a call again.
func (p *proc) killDead(err error) {
	for _, c := range p.conns {
		c.fail(err)
	}
	p.kill(true)
}

// kill stops the process and removes its socket directory. hard kills it
// at once (it died or hangs); otherwise go-plugin asks it to quit, and
// kills it if it has not within 2 seconds.
func (p *proc) kill(hard bool) {
	p.stopping.Store(true)
	for _, c := range p.conns {
		c.close()
	}
	if hard && p.cmd.Process != nil {
		_ = p.cmd.Process.Kill() // by pidfd: never another process
	}
	p.gp.Kill()
	_ = os.RemoveAll(p.dir)
	// A last line without its newline is logged now; what go-plugin had
	// not yet copied from the process is lost with it.
	p.stdout.flush()
	p.stderr.flush()
}
