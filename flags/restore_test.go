package flags_test

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/flags"
)

// A flag's Status says whether its value is the flag file's: a load that
// names it makes it so (also without changing its value), a Set that
// changes it undoes it, a Set to the value it has does not.
func TestStatusFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.txt")
	writeFile(t, path, "a on\nb off\n")
	fl := flags.New()
	_, err := fl.Set("a", flags.On, "alice")
	require.NoError(t, err)
	_, err = fl.Set("c", flags.Percent(5), "alice")
	require.NoError(t, err)
	ch, err := fl.LoadFile(path, "deploy")
	require.NoError(t, err)
	require.Equal(t, []string{"b"}, names(ch), "a had the file's value already")
	require.True(t, ch[0].File)

	a, _ := fl.Get("a")
	require.True(t, a.File, "the file named a: its value is the file's now")
	require.Equal(t, "alice", a.Who, "and its last change is still alice's")
	c, _ := fl.Get("c")
	require.False(t, c.File)

	_, err = fl.Set("a", flags.On, "bob")
	require.NoError(t, err)
	a, _ = fl.Get("a")
	require.True(t, a.File, "a Set to the value it has changes nothing")
	_, err = fl.Set("a", flags.Off, "bob")
	require.NoError(t, err)
	a, _ = fl.Get("a")
	require.False(t, a.File)
	_, err = fl.Reload("ops")
	require.NoError(t, err)
	a, _ = fl.Get("a")
	require.True(t, a.File)
	require.Equal(t, "ops", a.Who)
}

// Restore keeps the values changed outside the file in the previous
// process, with their who and when, and the new process's file values for
// the flags whose values came from the file.
func TestRestore(t *testing.T) {
	when := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	carried := []flags.Status{
		{Flag: "admin-set", Value: flags.Percent(50), Old: flags.Percent(25), Who: "bob", When: when},
		{Flag: "admin-only", Value: flags.On, Who: "carol", When: when},
		{Flag: "from-file", Value: flags.On, Old: flags.Off, Who: "deploy", When: when, File: true},
		{Flag: "file-line-gone", Value: flags.On, Who: "deploy", When: when, File: true},
	}
	path := filepath.Join(t.TempDir(), "flags.txt")
	writeFile(t, path, "admin-set 25%\nfrom-file off\nnew-in-file on\n") // the operator edited from-file
	var log bytes.Buffer
	fl := flags.New(flags.WithLogger(slog.New(slog.NewTextHandler(&log, nil))))
	_, err := fl.LoadFile(path, "new-process")
	require.NoError(t, err)

	took, err := fl.Restore(carried)
	require.NoError(t, err)
	require.Equal(t, []string{"admin-set", "admin-only", "file-line-gone"}, names(took))
	got := map[string]flags.Status{}
	for _, s := range fl.List() {
		got[s.Flag] = s
	}
	require.Equal(t, carried[0], got["admin-set"], "an admin change survives, who and when too")
	require.Equal(t, carried[1], got["admin-only"])
	require.Equal(t, flags.Off, got["from-file"].Value, "the new file's value")
	require.Equal(t, "new-process", got["from-file"].Who)
	require.Equal(t, carried[3], got["file-line-gone"], "a line deleted from the file does not turn a flag off")
	require.Equal(t, flags.On, got["new-in-file"].Value)
	require.True(t, fl.Enabled("admin-only", "x"))
	require.Contains(t, log.String(), `msg="flags: restore" flag=admin-set old=25% new=50% who=bob`)

	// A reload afterwards: the file wins again, as in one process.
	_, err = fl.Reload("ops")
	require.NoError(t, err)
	st, _ := fl.Get("admin-set")
	require.Equal(t, flags.Percent(25), st.Value)

	// Restoring again changes nothing more.
	took, err = fl.Restore([]flags.Status{carried[3]})
	require.NoError(t, err)
	require.Empty(t, took)

	// A setting carried as it is here is not taken again, though its When
	// comes without the monotonic reading that a Set's has.
	set, err := fl.Set("same", flags.On, "dave")
	require.NoError(t, err)
	set.When = set.When.Round(0)
	took, err = fl.Restore([]flags.Status{set})
	require.NoError(t, err)
	require.Empty(t, took)
}

func TestRestoreBadInput(t *testing.T) {
	fl := flags.New()
	_, err := fl.Set("kept", flags.On, "alice")
	require.NoError(t, err)
	_, err = fl.Restore([]flags.Status{{Flag: "ok", Value: flags.On, Who: "a"}, {Flag: "bad name", Value: flags.On, Who: "a"}})
	require.ErrorIs(t, err, flags.ErrBadName)
	require.ErrorContains(t, err, `"bad name"`)
	_, err = fl.Restore([]flags.Status{{Flag: "x", Value: flags.On, Who: "a"}, {Flag: "x", Value: flags.Off, Who: "a"}})
	require.ErrorContains(t, err, "flag x given twice")
	require.Equal(t, []string{"kept"}, names(fl.List()), "a refused restore changes nothing")
}
