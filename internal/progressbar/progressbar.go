// Package progressbar draws byte-count progress for the example programs:
// a bar redrawn in place on a terminal, and a plain line every 10% when the
// output is a file or a pipe (logs, CI), so that logs stay short.
//
// What this package does NOT do: it draws one bar at a time (a new label
// ends the previous bar), knows nothing about terminal widths beyond a
// fixed bar, and does not estimate remaining time.
package progressbar

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// redrawEvery limits terminal redraws.
const redrawEvery = 100 * time.Millisecond

// width is the number of cells of a bar.
const width = 30

// Bar draws the progress of one labelled task at a time. It is safe for
// concurrent use.
type Bar struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	label    string
	start    time.Time
	lastDraw time.Time
	lastStep int64
	drawn    bool
	now      func() time.Time
}

// New returns a Bar writing to w. It redraws in place when w is a terminal
// (an *os.File for which term.IsTerminal holds) and prints plain lines
// otherwise.
func New(w io.Writer) *Bar {
	b := &Bar{w: w, now: time.Now}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		b.tty = true
	}
	return b
}

// Update reports that done of total bytes of the task label are done.
// A total of 0 or less (unknown) is ignored. A label different from the
// previous one starts a new bar.
func (b *Bar) Update(label string, done, total int64) {
	if total <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if label != b.label {
		b.endLine()
		b.label, b.start, b.lastStep = label, now, -1
	}
	done = min(max(done, 0), total)
	if b.tty {
		if done < total && now.Sub(b.lastDraw) < redrawEvery {
			return
		}
		b.lastDraw = now
		frac := float64(done) / float64(total)
		fill := int(frac * width)
		rate := ""
		if el := now.Sub(b.start); el > 200*time.Millisecond {
			rate = "  " + Rate(done, el)
		}
		fmt.Fprintf(b.w, "\r%-8s %3.0f%% [%s%s] %s / %s%s\x1b[K", label, 100*frac,
			strings.Repeat("#", fill), strings.Repeat(".", width-fill), Size(done), Size(total), rate)
		b.drawn = true
		return
	}
	step := done * 10 / total
	if step > b.lastStep {
		b.lastStep = step
		fmt.Fprintf(b.w, "  %s: %d%% (%s of %s)\n", label, step*10, Size(done), Size(total))
	}
}

// Break ends a bar drawn on the current terminal line, so that other output
// starts on a line of its own. The next Update draws a new bar.
func (b *Bar) Break() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.endLine()
	b.label = ""
}

func (b *Bar) endLine() {
	if b.drawn {
		fmt.Fprintln(b.w)
		b.drawn = false
	}
}

// Size formats a byte count in decimal units (kB, MB, GB), as throughput
// is usually given.
func Size(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}

// Rate formats n bytes over d as MB/s.
func Rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "-- MB/s"
	}
	return fmt.Sprintf("%.1f MB/s", float64(n)/1e6/d.Seconds())
}
