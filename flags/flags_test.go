package flags_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/flags"
)

func quiet() flags.Option {
	return flags.WithLogger(slog.New(slog.DiscardHandler))
}

func TestParseValue(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want flags.Value
		pct  int
	}{
		{"on", flags.On, 100}, {"off", flags.Off, 0}, {"0%", flags.Percent(0), 0},
		{"25%", flags.Percent(25), 25}, {"100%", flags.Percent(100), 100},
	} {
		t.Run(tc.in, func(t *testing.T) {
			v, err := flags.ParseValue(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.want, v)
			require.Equal(t, tc.in, v.String())
			require.Equal(t, tc.pct, v.Percent())
		})
	}
	for _, bad := range []string{"", "On", "true", "1", "25", "%", "-1%", "+5%", "101%", "2.5%", " on", "25 %"} {
		t.Run("bad "+bad, func(t *testing.T) {
			_, err := flags.ParseValue(bad)
			require.ErrorIs(t, err, flags.ErrBadValue)
			require.Contains(t, err.Error(), fmt.Sprintf("%q", bad))
		})
	}
	require.Panics(t, func() { flags.Percent(101) })
	require.Panics(t, func() { flags.Percent(-1) })
}

func TestValueJSON(t *testing.T) {
	b, err := json.Marshal(map[string]flags.Value{"a": flags.Percent(5), "b": flags.On})
	require.NoError(t, err)
	require.JSONEq(t, `{"a":"5%","b":"on"}`, string(b))
	var back map[string]flags.Value
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, flags.Percent(5), back["a"])
	require.ErrorIs(t, json.Unmarshal([]byte(`"maybe"`), new(flags.Value)), flags.ErrBadValue)
}

func TestSetGetList(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := flags.New(quiet())
		require.False(t, s.Enabled("x", "m1"), "a flag never set reads off")
		_, ok := s.Get("x")
		require.False(t, ok)

		t0 := time.Now()
		st, err := s.Set("x", flags.On, "alice")
		require.NoError(t, err)
		require.Equal(t, flags.Status{Flag: "x", Value: flags.On, Old: flags.Off, Who: "alice", When: t0}, st)
		require.True(t, s.Enabled("x", "m1"))

		time.Sleep(time.Minute) // the bubble's clock: When moves with it
		st, err = s.Set("x", flags.Percent(30), "bob")
		require.NoError(t, err)
		require.Equal(t, flags.Status{Flag: "x", Value: flags.Percent(30), Old: flags.On, Who: "bob", When: t0.Add(time.Minute)}, st)

		again, err := s.Set("x", flags.Percent(30), "carol")
		require.NoError(t, err)
		require.Equal(t, st, again, "setting the same value changes nothing")

		_, err = s.Set("a-b_c.d/e", flags.Off, "alice")
		require.NoError(t, err)
		list := s.List()
		require.Len(t, list, 2)
		require.Equal(t, "a-b_c.d/e", list[0].Flag)
		require.Equal(t, st, list[1])
		got, ok := s.Get("x")
		require.True(t, ok)
		require.Equal(t, st, got)

		del, err := s.Delete("x", "dave")
		require.NoError(t, err)
		require.Equal(t, flags.Status{Flag: "x", Value: flags.Off, Old: flags.Percent(30), Who: "dave", When: t0.Add(time.Minute)}, del)
		require.False(t, s.Enabled("x", "m1"))
		require.Len(t, s.List(), 1)
		_, err = s.Delete("x", "dave")
		require.ErrorIs(t, err, flags.ErrUnknownFlag)
	})
}

func TestSetRejects(t *testing.T) {
	s := flags.New(quiet())
	for _, name := range []string{"", "has space", "semi;colon", "é", strings.Repeat("n", 101)} {
		_, err := s.Set(name, flags.On, "alice")
		require.ErrorIs(t, err, flags.ErrBadName, "%q", name)
		require.Contains(t, err.Error(), fmt.Sprintf("%q", name))
	}
	_, err := s.Set(strings.Repeat("n", 100), flags.On, "alice")
	require.NoError(t, err)
	_, err = s.Set("ok", flags.On, "")
	require.ErrorIs(t, err, flags.ErrNoWho)
	_, err = s.Delete("ok", "")
	require.ErrorIs(t, err, flags.ErrNoWho)
	require.Len(t, s.List(), 1, "only the good set happened")
}

func TestZeroSet(t *testing.T) {
	var s flags.Set
	require.False(t, s.Enabled("x", ""))
	require.Empty(t, s.List())
	require.Empty(t, s.AppendOn(nil, "m"))
}

func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("555-%04d", i)
	}
	return out
}

func onFor(s *flags.Set, name string, machines []string) map[string]bool {
	on := map[string]bool{}
	for _, id := range machines {
		if s.Enabled(name, id) {
			on[id] = true
		}
	}
	return on
}

// TestPercentStable: a machine's answer depends only on its bucket, so
// raising a percentage only adds machines and lowering it back gives the
// same machines as before; shares are close to the percentage; two flags
// pick different machines.
func TestPercentStable(t *testing.T) {
	s := flags.New(quiet())
	machines := ids(4000)
	var prev map[string]bool
	var at10 map[string]bool
	for _, p := range []int{0, 1, 10, 25, 50, 90, 100} {
		_, err := s.Set("ramp", flags.Percent(p), "ops")
		require.NoError(t, err)
		on := onFor(s, "ramp", machines)
		share := float64(len(on)) / float64(len(machines)) * 100
		require.InDelta(t, float64(p), share, 3, "share at %d%%", p)
		for id := range prev {
			require.True(t, on[id], "%s was on at a lower percentage and is off at %d%%", id, p)
		}
		for _, id := range machines {
			require.Equal(t, flags.Bucket("ramp", id) < p, on[id])
		}
		if p == 10 {
			at10 = on
		}
		prev = on
	}
	_, err := s.Set("ramp", flags.Percent(10), "ops")
	require.NoError(t, err)
	require.Equal(t, at10, onFor(s, "ramp", machines), "back to 10%: the same machines")

	_, err = s.Set("other", flags.Percent(10), "ops")
	require.NoError(t, err)
	other := onFor(s, "other", machines)
	common := 0
	for id := range other {
		if at10[id] {
			common++
		}
	}
	require.Less(t, common, len(at10)/3, "two flags at 10%% share %d of %d machines", common, len(at10))
}

// TestBucketFixed pins the hash: processes (and plugins) built at other
// times must agree on every machine's bucket.
func TestBucketFixed(t *testing.T) {
	got := []int{
		flags.Bucket("fast-dial", "555-0100"), flags.Bucket("fast-dial", "555-0101"),
		flags.Bucket("new-tone", "555-0100"), flags.Bucket("x", ""), flags.Bucket("", "x"),
	}
	require.Equal(t, []int{bucketsGolden[0], bucketsGolden[1], bucketsGolden[2], bucketsGolden[3], bucketsGolden[4]}, got)
	require.NotEqual(t, flags.Bucket("ab", "c"), flags.Bucket("a", "bc"), "the zero byte separates name and id")
}

func TestAppendOn(t *testing.T) {
	s := flags.New(quiet())
	for _, f := range []struct {
		name string
		v    flags.Value
	}{{"z-on", flags.On}, {"a-on", flags.On}, {"off", flags.Off}, {"none", flags.Percent(0)}, {"all", flags.Percent(100)}} {
		_, err := s.Set(f.name, f.v, "ops")
		require.NoError(t, err)
	}
	buf := make([]string, 0, 8)
	require.Equal(t, []string{"a-on", "all", "z-on"}, s.AppendOn(buf, "m"))
	require.Equal(t, []string{"pre", "a-on", "all", "z-on"}, s.AppendOn([]string{"pre"}, "m"))
}

func TestReadAllocatesNothing(t *testing.T) {
	s := flags.New(quiet())
	_, err := s.Set("pct", flags.Percent(50), "ops")
	require.NoError(t, err)
	_, err = s.Set("on", flags.On, "ops")
	require.NoError(t, err)
	buf := make([]string, 0, 4)
	allocs := testing.AllocsPerRun(100, func() {
		_ = s.Enabled("pct", "555-0100")
		_ = s.Enabled("on", "555-0100")
		_ = s.Enabled("missing", "555-0100")
		buf = s.AppendOn(buf[:0], "555-0100")
	})
	require.Zero(t, allocs)
}

// TestSlogRecord checks the record of a change: message, who, old, new,
// when.
func TestSlogRecord(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		s := flags.New(flags.WithLogger(slog.New(slog.NewJSONHandler(&buf, nil))))
		_, err := s.Set("fast-dial", flags.Percent(25), "alice")
		require.NoError(t, err)
		_, err = s.Set("fast-dial", flags.Percent(25), "alice") // no change, no record
		require.NoError(t, err)
		_, err = s.Delete("fast-dial", "bob")
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		require.Len(t, lines, 2)
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(lines[0]), &rec))
		delete(rec, "time")
		require.Equal(t, map[string]any{
			"level": "INFO", "msg": "flags: set", "flag": "fast-dial", "old": "off", "new": "25%",
			"who": "alice", "when": time.Now().Format(time.RFC3339Nano),
		}, rec)
		require.NoError(t, json.Unmarshal([]byte(lines[1]), &rec))
		require.Equal(t, "flags: delete", rec["msg"])
		require.Equal(t, "bob", rec["who"])
		require.Equal(t, "25%", rec["old"])
		require.Equal(t, "off", rec["new"])
	})
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flags.txt")
	s := flags.New(quiet())
	_, err := s.Reload("ops")
	require.ErrorIs(t, err, flags.ErrNoFile)

	writeFile(t, path, "# the flags\n\nfast-dial   25%\nnew-tone on # since Tuesday\r\nold-billing\toff\n")
	ch, err := s.LoadFile(path, "boot")
	require.NoError(t, err)
	require.Len(t, ch, 3)
	require.Equal(t, "fast-dial", ch[0].Flag)
	require.Equal(t, flags.Percent(25), ch[0].Value)
	require.Equal(t, "boot", ch[0].Who)
	v, _ := s.Get("new-tone")
	require.Equal(t, flags.On, v.Value)

	_, err = s.Set("admin-only", flags.On, "alice")
	require.NoError(t, err)
	_, err = s.Set("new-tone", flags.Off, "alice")
	require.NoError(t, err)

	// A reload: the file wins for the flags it names, the others stay.
	writeFile(t, path, "fast-dial 50%\nnew-tone on\nold-billing off\n")
	ch, err = s.Reload("ops")
	require.NoError(t, err)
	require.Equal(t, []string{"fast-dial", "new-tone"}, names(ch), "only what changed is recorded")
	require.Equal(t, flags.Percent(25), ch[0].Old)
	require.Equal(t, "ops", ch[0].Who)
	require.True(t, s.Enabled("admin-only", "m"))

	before := s.List()
	for _, tc := range []struct {
		name, text string
		line       int
		want       string
		is         error
	}{
		{"bad value", "a on\nfast-dial 25\n", 2, `flag "fast-dial"`, flags.ErrBadValue},
		{"bad name", "a on\nb off\nfast dial on\n", 3, "have 3 fields", nil},
		{"bad char", "fast;dial on\n", 1, `"fast;dial"`, flags.ErrBadName},
		{"one field", "fast-dial\n", 1, "have 1 fields", nil},
		{"twice", "a on\n# c\na off\n", 3, "given twice (first on line 1)", nil},
		{"percent range", "a 101%\n", 1, `"101%"`, flags.ErrBadValue},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeFile(t, path, tc.text)
			_, err := s.Reload("ops")
			require.ErrorIs(t, err, flags.ErrBadFile)
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			}
			require.Contains(t, err.Error(), fmt.Sprintf("%s:%d:", path, tc.line))
			require.Contains(t, err.Error(), tc.want)
			require.Equal(t, before, s.List(), "a bad file changes nothing")
		})
	}
	_, err = s.LoadFile(filepath.Join(dir, "missing.txt"), "ops")
	require.ErrorIs(t, err, flags.ErrBadFile)
	require.ErrorIs(t, err, os.ErrNotExist)
	_, err = s.LoadFile(path, "")
	require.ErrorIs(t, err, flags.ErrNoWho)
	require.Equal(t, before, s.List())
}

func names(st []flags.Status) []string {
	var out []string
	for _, s := range st {
		out = append(out, s.Flag)
	}
	return out
}

// TestConcurrent reads flags while they change (run with -race): a reader
// sees each flag either before or after a change, never anything else.
func TestConcurrent(t *testing.T) {
	s := flags.New(quiet())
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				on := s.AppendOn(nil, "m")
				for _, n := range on {
					if n != "a" && n != "b" {
						t.Errorf("AppendOn gave %q", n)
					}
				}
				_ = s.Enabled("a", "m")
				_ = s.List()
			}
		})
	}
	for i := range 200 {
		v := flags.Off
		if i%2 == 0 {
			v = flags.On
		}
		_, err := s.Set("a", v, "w")
		require.NoError(t, err)
		_, err = s.Set("b", flags.Percent(i%101), "w")
		require.NoError(t, err)
	}
	close(stop)
	wg.Wait()
	st, _ := s.Get("b")
	require.Equal(t, flags.Percent(199%101), st.Value)
}
