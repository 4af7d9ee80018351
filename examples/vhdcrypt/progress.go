package main

import (
	"fmt"
	"io"
	"time"

	"github.com/e2eimage/e2eimage/vhdcrypt"

	"github.com/e2eimage/e2eimage/internal/progressbar"
)

// progress draws vhdcrypt.Progress reports on standard error with the examples'
// shared progress bar (a redrawn bar on a terminal, a plain line every 10%
// otherwise), and nothing with -q.
type progress struct {
	w     io.Writer
	quiet bool
	bar   *progressbar.Bar
}

func newProgress(w io.Writer, quiet bool) *progress {
	return &progress{w: w, quiet: quiet, bar: progressbar.New(w)}
}

// update is the vhdcrypt.WithProgress callback.
func (p *progress) update(u vhdcrypt.Progress) {
	if !p.quiet {
		p.bar.Update(string(u.Phase), u.Done, u.Total)
	}
}

// abort ends a drawn bar before an error message is printed.
func (p *progress) abort() { p.bar.Break() }

// finish prints the throughput summary.
func (p *progress) finish(verb string, n int64, d time.Duration, extra string) {
	if p.quiet {
		return
	}
	p.bar.Break()
	if extra != "" {
		extra = "; " + extra
	}
	fmt.Fprintf(p.w, "%s %s in %s (%s)%s\n", verb, progressbar.Size(n), d.Round(time.Millisecond), progressbar.Rate(n, d), extra)
}
