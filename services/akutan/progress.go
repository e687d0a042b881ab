package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress draws a progress bar (done/total, rate and ETA) on one line,
// redrawn with "\r". It is given a writer only when stderr is a terminal
// and --quiet is off (app.progressOut); with a nil writer it draws nothing,
// so no "\r" reaches a log file or CI.
type progress struct {
	w     io.Writer
	step  string
	start time.Time
	last  time.Time
	drawn bool
	count bool // counts things, not bytes
}

func newProgress(w io.Writer, step string, count bool) *progress {
	return &progress{w: w, step: step, start: time.Now(), count: count}
}

// set records progress; it redraws at most ten times a second.
func (p *progress) set(done, total int64) {
	if p == nil || p.w == nil {
		return
	}
	now := time.Now()
	if done < total && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last, p.drawn = now, true
	frac := float64(done) / max(float64(total), 1)
	const width = 30
	filled := min(int(frac*width), width)
	rate := float64(done) / max(now.Sub(p.start).Seconds(), 1e-9)
	eta := time.Duration(float64(total-done)/max(rate, 1e-9)) * time.Second
	unit := humanBytes
	if p.count {
		unit = func(n int64) string { return fmt.Sprint(n) }
	}
	fmt.Fprintf(p.w, "\r%s [%s%s] %3.0f%% %s/%s, %s/s, ETA %s   ", p.step,
		strings.Repeat("=", filled), strings.Repeat(" ", width-filled), 100*frac,
		unit(done), unit(total), unit(int64(rate)), eta.Round(time.Second))
}

// done ends the bar's line.
func (p *progress) done() {
	if p != nil && p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}
