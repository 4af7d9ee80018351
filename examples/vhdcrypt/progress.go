package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/e2eimage/e2eimage/e2e"
	"golang.org/x/term"
)

// progress draws e2e.Progress reports on standard error: a redrawn bar on a
// terminal, a plain line every 10% otherwise (logs, CI), nothing with -q.
type progress struct {
	w        io.Writer
	quiet    bool
	tty      bool
	width    int
	phase    e2e.Phase
	start    time.Time // of the current phase
	lastDraw time.Time
	lastStep int64 // last 10% step printed (plain mode)
	drawn    bool  // a bar is on the current line
}

// redrawEvery limits terminal redraws.
const redrawEvery = 100 * time.Millisecond

func newProgress(w io.Writer, quiet bool) *progress {
	p := &progress{w: w, quiet: quiet, width: 30}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
	}
	return p
}

// update is the e2e.WithProgress callback.
func (p *progress) update(u e2e.Progress) {
	if p.quiet || u.Total <= 0 {
		return
	}
	now := time.Now()
	if u.Phase != p.phase {
		p.endLine()
		p.phase, p.start, p.lastStep = u.Phase, now, -1
	}
	if p.tty {
		if u.Done < u.Total && now.Sub(p.lastDraw) < redrawEvery {
			return
		}
		p.lastDraw = now
		frac := float64(u.Done) / float64(u.Total)
		fill := int(frac * float64(p.width))
		rate := ""
		if el := now.Sub(p.start).Seconds(); el > 0.2 {
			rate = "  " + rateString(u.Done, now.Sub(p.start))
		}
		fmt.Fprintf(p.w, "\r%-8s %3.0f%% [%s%s] %s / %s%s\x1b[K", u.Phase, 100*frac,
			strings.Repeat("#", fill), strings.Repeat(".", p.width-fill), sizeString(u.Done), sizeString(u.Total), rate)
		p.drawn = true
		return
	}
	step := u.Done * 10 / u.Total
	if step > p.lastStep {
		p.lastStep = step
		fmt.Fprintf(p.w, "%s: %d%% (%s of %s)\n", u.Phase, step*10, sizeString(u.Done), sizeString(u.Total))
	}
}

func (p *progress) endLine() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

// abort ends a drawn bar before an error message is printed.
func (p *progress) abort() { p.endLine() }

// finish prints the throughput summary.
func (p *progress) finish(verb string, n int64, d time.Duration, extra string) {
	if p.quiet {
		return
	}
	p.endLine()
	if extra != "" {
		extra = "; " + extra
	}
	fmt.Fprintf(p.w, "%s %s in %s (%s)%s\n", verb, sizeString(n), d.Round(time.Millisecond), rateString(n, d), extra)
}

// sizeString formats bytes in decimal units, as throughput is.
func sizeString(n int64) string {
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

func rateString(n int64, d time.Duration) string {
	if d <= 0 {
		return "-- MB/s"
	}
	return fmt.Sprintf("%.0f MB/s", float64(n)/1e6/d.Seconds())
}
