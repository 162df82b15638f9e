package flags_test

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/hotline-go/hotline/flags"
)

func Example() {
	fl := flags.New(flags.WithLogger(slog.New(slog.DiscardHandler)))

	// An operator turns a flag on for a quarter of the machines.
	st, err := fl.Set("fast-dial", flags.Percent(25), "alice")
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s: %v -> %v by %s\n", st.Flag, st.Old, st.Value, st.Who)

	// A handler asks for its machine; the answer is stable per machine.
	on := 0
	for i := range 1000 {
		if fl.Enabled("fast-dial", fmt.Sprintf("555-%04d", i)) {
			on++
		}
	}
	fmt.Println("on for about a quarter:", on > 200 && on < 300)
	fmt.Println("never set reads off:", fl.Enabled("new-tone", "555-0100"))
	// Output:
	// fast-dial: off -> 25% by alice
	// on for about a quarter: true
	// never set reads off: false
}

func ExampleSet_LoadFile() {
	dir, err := os.MkdirTemp("", "flags")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "flags.txt")
	if err := os.WriteFile(path, []byte("# name  value\nfast-dial 25%\nnew-tone on\n"), 0o600); err != nil {
		panic(err)
	}
	fl := flags.New(flags.WithLogger(slog.New(slog.DiscardHandler)))
	if _, err := fl.LoadFile(path, "boot"); err != nil {
		panic(err)
	}
	for _, st := range fl.List() {
		fmt.Println(st.Flag, st.Value)
	}

	// A bad line names the file and the line, and changes nothing.
	if err := os.WriteFile(path, []byte("fast-dial 50%\nnew-tone maybe\n"), 0o600); err != nil {
		panic(err)
	}
	_, err = fl.Reload("ops")
	fmt.Println(err != nil, fl.Enabled("new-tone", "any"))
	// Output:
	// fast-dial 25%
	// new-tone on
	// true true
}

func ExampleCheckName() {
	for _, name := range []string{"fast-dial", "billing/v2.rounding", "fast dial"} {
		fmt.Println(flags.CheckName(name))
	}
	// Output:
	// <nil>
	// <nil>
	// flags: bad flag name "fast dial": character ' '; want A–Z a–z 0–9 . _ - /
}

func ExampleSet_Restore() {
	discard := flags.WithLogger(slog.New(slog.DiscardHandler))

	// The old process: new-tone came from its flag file, fast-dial was
	// raised through the admin API.
	old := flags.New(discard)
	dir, err := os.MkdirTemp("", "flags")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "flags.txt")
	if err := os.WriteFile(path, []byte("fast-dial 25%\nnew-tone on\n"), 0o600); err != nil {
		panic(err)
	}
	if _, err := old.LoadFile(path, "boot"); err != nil {
		panic(err)
	}
	if _, err := old.Set("fast-dial", flags.Percent(50), "alice"); err != nil {
		panic(err)
	}

	// The operator edits the file, then restarts the binary: the new
	// process loads the file, then takes over the old process's flags.
	if err := os.WriteFile(path, []byte("fast-dial 25%\nnew-tone off\n"), 0o600); err != nil {
		panic(err)
	}
	fl := flags.New(discard)
	if _, err := fl.LoadFile(path, "boot"); err != nil {
		panic(err)
	}
	if _, err := fl.Restore(old.List()); err != nil {
		panic(err)
	}
	for _, st := range fl.List() {
		fmt.Println(st.Flag, st.Value, st.Who, st.File)
	}
	// Output:
	// fast-dial 50% alice false
	// new-tone off boot true
}
