// Command phone-chaos is the phone plugin of the chaos soak (`phoneswitch
// soak`), never of a normal run: it serves v1 or v2 of the phone machine,
// chosen by the name it is installed under (phone-v1 or phone-v2, so that
// the switch loads it as it loads the real plugins), with two faults that
// only files in the directory named by $PHONESWITCH_CHAOS_DIR trigger:
//
//   - hang: the first event handled after the file appears claims it
//     (renames it to hang.claimed.<pid>) and never returns, so the host's
//     call deadline kills this process, starts another and delivers the
//     event again;
//   - fail-upgrade: while the file exists, an UPGRADE into this version,
//     or a downgrade out of it, fails for the machine whose number the
//     file holds, so an atomic rollout must be undone.
//
// Without $PHONESWITCH_CHAOS_DIR it refuses to start.
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/hotline-go/hotline/examples/phoneswitch/phone"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/plugin"
	"github.com/vmihailenco/msgpack/v5"
)

// EnvDir names the directory of the trigger files.
const envDir = "PHONESWITCH_CHAOS_DIR"

func main() {
	dir := os.Getenv(envDir)
	if dir == "" {
		fmt.Fprintln(os.Stderr, "phone-chaos: $"+envDir+" is not set: this plugin is for phoneswitch soak only")
		os.Exit(2)
	}
	var c fsm.Code
	switch name := filepath.Base(os.Args[0]); name {
	case "phone-v1":
		c = phone.V1()
	case "phone-v2":
		c = phone.V2()
	default:
		fmt.Fprintf(os.Stderr, "phone-chaos: installed as %q: want phone-v1 or phone-v2\n", name)
		os.Exit(2)
	}
	plugin.Serve(&code{Code: c, dir: dir})
}

// code is a version of the phone machine with the faults of the trigger
// files.
type code struct {
	fsm.Code
	dir string
}

func (c *code) New(ctx context.Context, id string) (fsm.Instance, error) {
	in, err := c.Code.New(ctx, id)
	return c.wrap(in, err)
}

func (c *code) Load(ctx context.Context, state string, data []byte) (fsm.Instance, error) {
	in, err := c.Code.Load(ctx, state, data)
	return c.wrap(in, err)
}

func (c *code) Upgrade(ctx context.Context, from, state string, data []byte) (fsm.Instance, error) {
	if err := c.failUpgrade(data); err != nil {
		return nil, err
	}
	in, err := c.Code.Upgrade(ctx, from, state, data)
	return c.wrap(in, err)
}

func (c *code) Downgrade(ctx context.Context, to string, in fsm.Instance) (string, []byte, error) {
	inner := in
	if w, ok := in.(*instance); ok {
		inner = w.Instance
	}
	data, err := inner.Encode()
	if err != nil {
		return "", nil, err
	}
	if err := c.failUpgrade(data); err != nil {
		return "", nil, err
	}
	return c.Code.Downgrade(ctx, to, inner)
}

// DecodeEvent is the phone machine's: the plugin server needs it.
func (c *code) DecodeEvent(ctx context.Context, from, name string, payload []byte) (any, error) {
	dec, ok := c.Code.(fsm.EventDecoder)
	if !ok {
		return nil, fmt.Errorf("phone-chaos: %s decodes no event", c.Version())
	}
	return dec.DecodeEvent(ctx, from, name, payload)
}

// failUpgrade returns an error if the fail-upgrade file names the number
// of the machine whose data (v1's or v2's, both begin with Number) is data.
func (c *code) failUpgrade(data []byte) error {
	want, err := os.ReadFile(filepath.Join(c.dir, "fail-upgrade"))
	if err != nil {
		return nil // no trigger
	}
	var d struct{ Number string }
	if err := msgpack.Unmarshal(data, &d); err != nil {
		return fmt.Errorf("phone-chaos: decode the number: %w", err)
	}
	if d.Number != "" && d.Number == string(bytes.TrimSpace(want)) {
		return fmt.Errorf("phone-chaos: UPGRADE of phone %s to %s fails: a fault injected by the soak", d.Number, c.Version())
	}
	return nil
}

func (c *code) wrap(in fsm.Instance, err error) (fsm.Instance, error) {
	if err != nil {
		return nil, err
	}
	return &instance{Instance: in, c: c}, nil
}

// instance hangs in Handle when it claims the hang file.
type instance struct {
	fsm.Instance
	c *code
}

func (in *instance) Handle(ev fsm.Event) (string, []fsm.Action, error) {
	claimed := filepath.Join(in.c.dir, "hang.claimed."+strconv.Itoa(os.Getpid()))
	if os.Rename(filepath.Join(in.c.dir, "hang"), claimed) == nil {
		select {} // hung: the host's call deadline kills this process
	}
	return in.Instance.Handle(ev)
}

// UseFlags gives the phone's own instance the machine's feature flags
// (the plugin server hands them over with each event): the wrapper must
// not hide that the phone reads flags.
func (in *instance) UseFlags(f fsm.Flags) {
	if u, ok := in.Instance.(fsm.FlagUser); ok {
		u.UseFlags(f)
	}
}

func (in *instance) Close() error {
	if cl, ok := in.Instance.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}
