package upgrade

import (
	"context"
	"errors"
	"fmt"

	"github.com/hotline-go/hotline/flags"
	"github.com/hotline-go/hotline/fsm"
)

// ErrNoFlags is returned (wrapped) by the admin op "flags" of a release
// handler made without [WithFlags].
var ErrNoFlags = errors.New("upgrade: no feature flags (WithFlags)")

// WithFlags gives the handler a set of feature flags: every machine it
// starts ([ReleaseHandler.Start], [ReleaseHandler.Restore]) reads them
// ([fsm.WithFlags], unless the caller passes its own), and the admin API
// serves op "flags" on them. The set logs each change with its own logger
// ([flags.WithLogger]). Default: none; machines read every flag off.
//
//	{"op":"flags"}                                          list every flag
//	{"op":"flags","flag":"fast-dial"}                       one flag
//	{"op":"flags","flag":"fast-dial","value":"25%","who":"alice"}  set one
//	{"op":"flags","reload":true,"who":"ops"}                reload the flag file
//
// Each answers with the flags' statuses (value, old value, who, when) in
// AdminResponse.Flags: for a set, the flag's; for a reload, the changes.
// A bad name or value, or a field of the machine ops (machine, to,
// dry_run, selector, strategy: a flag is the same for every machine), is
// an error wrapping [ErrBadRequest] and changes nothing.
func WithFlags(s *flags.Set) ReleaseOption {
	return func(c *releaseConfig) { c.flags = s }
}

// Flags returns the set given by [WithFlags], or nil.
func (h *ReleaseHandler) Flags() *flags.Set { return h.cfg.flags }

// checkFlagsRequest checks the fields of an op "flags" request. The
// fields of the machine ops are refused: flags are one set for every
// machine, and a request naming a machine, a version or a selector would
// look scoped to them while it changed the flag for all.
func checkFlagsRequest(req AdminRequest) error {
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"machine", req.Machine != ""},
		{"to", req.To != ""},
		{"dry_run", req.DryRun},
		{"selector", !req.Selector.all()},
	} {
		if f.set {
			return fmt.Errorf("%w: flags takes no %s: a flag is the same set for every machine", ErrBadRequest, f.name)
		}
	}
	switch {
	case req.Reload && (req.Flag != "" || req.Value != ""):
		return fmt.Errorf("%w: flags: reload takes no flag or value", ErrBadRequest)
	case req.Value != "" && req.Flag == "":
		return fmt.Errorf("%w: flags: value %q needs flag", ErrBadRequest, req.Value)
	}
	if req.Flag != "" {
		if err := flags.CheckName(req.Flag); err != nil {
			return fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
	}
	if req.Value != "" {
		if _, err := flags.ParseValue(req.Value); err != nil {
			return fmt.Errorf("%w: flags: %s: %w", ErrBadRequest, req.Flag, err)
		}
	}
	return nil
}

// adminFlags serves op "flags".
func (h *ReleaseHandler) adminFlags(req AdminRequest, who string) ([]flags.Status, error) {
	fl := h.cfg.flags
	if fl == nil {
		return nil, ErrNoFlags
	}
	switch {
	case req.Reload:
		return fl.Reload(who)
	case req.Flag == "":
		return fl.List(), nil
	case req.Value == "":
		st, ok := fl.Get(req.Flag)
		if !ok {
			return nil, fmt.Errorf("%w %q", flags.ErrUnknownFlag, req.Flag)
		}
		return []flags.Status{st}, nil
	}
	v, err := flags.ParseValue(req.Value)
	if err != nil {
		return nil, err
	}
	st, err := fl.Set(req.Flag, v, who)
	if err != nil {
		return nil, err
	}
	return []flags.Status{st}, nil
}

// Flags returns every feature flag with its value and last change.
func (c *AdminClient) Flags(ctx context.Context) ([]flags.Status, error) {
	resp, err := c.Do(ctx, AdminRequest{Op: "flags"}, nil)
	return resp.Flags, err
}

// SetFlag sets the feature flag called name to value ("on", "off" or
// "N%"), recording who, and returns its new status.
func (c *AdminClient) SetFlag(ctx context.Context, name, value, who string) (flags.Status, error) {
	resp, err := c.Do(ctx, AdminRequest{Op: "flags", Flag: name, Value: value, Who: who}, nil)
	if err != nil {
		return flags.Status{}, err
	}
	if len(resp.Flags) != 1 {
		return flags.Status{}, fmt.Errorf("upgrade: admin: set flag %s: %d statuses in the answer", name, len(resp.Flags))
	}
	return resp.Flags[0], nil
}

// ReloadFlags asks to reload the flag file, recording who, and returns the
// changes it made.
func (c *AdminClient) ReloadFlags(ctx context.Context, who string) ([]flags.Status, error) {
	resp, err := c.Do(ctx, AdminRequest{Op: "flags", Reload: true, Who: who}, nil)
	return resp.Flags, err
}

var _ fsm.FlagSource = (*flags.Set)(nil)
