package flags

import (
	"errors"
	"testing"
)

// FuzzParseValue: a value parses to one that prints back as the input, or
// is an ErrBadValue.
func FuzzParseValue(f *testing.F) {
	for _, s := range []string{"on", "off", "0%", "25%", "100%", "101%", "-1%", "%", "", "07%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseValue(s)
		if err != nil {
			if !errors.Is(err, ErrBadValue) {
				t.Fatalf("%q: %v does not wrap ErrBadValue", s, err)
			}
			return
		}
		if again, err := ParseValue(v.String()); err != nil || again != v {
			t.Fatalf("%q parsed as %v, which parses as %v, %v", s, v, again, err)
		}
	})
}

// FuzzParseFile: the file parser never panics; what it accepts has good
// names and values, each once; what it refuses is an ErrBadFile.
func FuzzParseFile(f *testing.F) {
	f.Add("# flags\nfast-dial 25%\nnew-tone on\n")
	f.Add("a on\na off\n")
	f.Add("a\tb\tc\r\n\n#\n")
	f.Fuzz(func(t *testing.T, text string) {
		set, err := parseFile("f.txt", text)
		if err != nil {
			if !errors.Is(err, ErrBadFile) {
				t.Fatalf("%v does not wrap ErrBadFile", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, s := range set {
			if err := checkName(s.name); err != nil || seen[s.name] {
				t.Fatalf("accepted %q twice or badly: %v", s.name, err)
			}
			seen[s.name] = true
			if _, err := ParseValue(s.v.String()); err != nil {
				t.Fatalf("accepted value %v: %v", s.v, err)
			}
		}
	})
}
