package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hotline-go/hotline/upgrade"
)

// barWidth is the width of the progress bar, in characters.
const barWidth = 30

// progress shows the progress lines of a rollout: a bar redrawn in place
// on a terminal, one plain line per step otherwise.
type progress struct {
	w     io.Writer
	tty   bool
	drawn bool // a bar is on the current line
}

func newProgress(w io.Writer) *progress {
	return &progress{w: w, tty: isTerminal(w)}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// show draws one progress line of the admin API.
func (p *progress) show(pr upgrade.Progress) {
	if !p.tty {
		fmt.Fprintf(p.w, "progress: %s %d/%d\n", pr.Phase, pr.Done, pr.Total)
		return
	}
	fmt.Fprintf(p.w, "\r\033[K%s", bar(pr))
	p.drawn = true
	if pr.Phase == "canaries" {
		// The canaries are watched now: nothing moves for a while.
		fmt.Fprint(p.w, " (watching)")
	}
}

// end ends the bar's line, if one was drawn.
func (p *progress) end() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

// bar renders "[#######.......]  7/20 changed".
func bar(pr upgrade.Progress) string {
	filled := 0
	if pr.Total > 0 {
		filled = min(barWidth, max(0, pr.Done*barWidth/pr.Total))
	}
	return fmt.Sprintf("[%s%s] %d/%d %s", strings.Repeat("#", filled), strings.Repeat(".", barWidth-filled), pr.Done, pr.Total, pr.Phase)
}
