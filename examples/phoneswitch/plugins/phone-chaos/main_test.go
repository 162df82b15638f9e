package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotline-go/hotline/examples/phoneswitch/phone"
	"github.com/hotline-go/hotline/flags"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/fsm/fsmtest"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func status(t *testing.T, m *fsmtest.Machine) string {
	t.Helper()
	out, err := m.Call(phone.Status{})
	require.NoError(t, err)
	return strings.Join(out.(phone.Output).Lines, "|")
}

// The soak's wrapper of a phone version passes the machine's feature flags
// on to the phone (before, its instance hid UseFlags, and the phone read
// every flag off), for a new machine and after its UPGRADE to v2; a flag
// turned off reads off.
func TestWrapperForwardsFlags(t *testing.T) {
	fl := flags.New(flags.WithLogger(slog.New(slog.DiscardHandler)))
	_, err := fl.Set(phone.FlagHDAudio, flags.On, "test")
	require.NoError(t, err)
	dir := t.TempDir()
	v1, v2 := &code{Code: phone.V1(), dir: dir}, &code{Code: phone.V2(), dir: dir}

	m := fsmtest.Start(t, v1, fsm.WithID("100"), fsm.WithFlags(fl))
	var in fsm.Instance = &instance{}
	_, ok := in.(fsm.FlagUser)
	require.True(t, ok, "the wrapper's instance takes flags")
	require.Equal(t, "STATUS 100 off v1 calls=0 frames_in=0 frames_out=0 codec=hd", status(t, m))

	require.NoError(t, m.ChangeCode(v2))
	require.Equal(t, "STATUS 100 off v2 calls=0 frames_in=0 frames_out=0 codec=hd", status(t, m))

	other := fsmtest.Start(t, v2, fsm.WithID("200"), fsm.WithFlags(fl))
	_, err = fl.Set(phone.FlagHDAudio, flags.Off, "test")
	require.NoError(t, err)
	require.Equal(t, "STATUS 200 off v2 calls=0 frames_in=0 frames_out=0", status(t, other))
}

// The fail-upgrade fault fails the UPGRADE of the machine it names only.
func TestFailUpgrade(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "fail-upgrade"), []byte("100\n"), 0o600))
	v1, v2 := &code{Code: phone.V1(), dir: dir}, &code{Code: phone.V2(), dir: dir}
	named := fsmtest.Start(t, v1, fsm.WithID("100"))
	other := fsmtest.Start(t, v1, fsm.WithID("200"))
	err := named.ChangeCode(v2)
	require.ErrorContains(t, err, "UPGRADE of phone 100 to v2 fails")
	require.NoError(t, other.ChangeCode(v2))
	require.Equal(t, "STATUS 200 off v2 calls=0 frames_in=0 frames_out=0", status(t, other))
}
