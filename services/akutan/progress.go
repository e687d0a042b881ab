package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress draws a progress bar with count, rate and ETA on one line.
type progress struct {
	w       io.Writer
	unit    string
	total   int64
	n       int64
	start   time.Time
	enabled bool
}

func newProgress(w io.Writer, unit string, total int64, enabled bool) *progress {
	return &progress{w: w, unit: unit, total: total, start: time.Now(), enabled: enabled}
}

func (p *progress) add(n int64) {
	p.n += n
	if !p.enabled {
		return
	}
	frac := float64(p.n) / float64(p.total)
	width := 30
	filled := int(frac * float64(width))
	el := time.Since(p.start).Seconds()
	rate := float64(p.n) / max(el, 1e-9)
	eta := time.Duration(float64(p.total-p.n)/max(rate, 1e-9)) * time.Second
	fmt.Fprintf(p.w, "\r[%s%s] %3.0f%% %d/%d %s, %.0f %s/s, ETA %s   ",
		strings.Repeat("=", filled), strings.Repeat(" ", width-filled), 100*frac, p.n, p.total, p.unit, rate, p.unit, eta.Round(time.Second))
}

func (p *progress) done() {
	if p.enabled {
		fmt.Fprintln(p.w)
	}
}

// byteProgress draws a progress bar for a byte count: done/total, rate and
// ETA, on stderr when it is a terminal-like stream.
type byteProgress struct {
	w     io.Writer
	step  string
	start time.Time
	last  time.Time
	drawn bool
	count bool // counts things, not bytes
}

func newByteProgress(w io.Writer, step string) *byteProgress {
	return &byteProgress{w: w, step: step, start: time.Now()}
}

// set records progress; it redraws at most ten times a second.
func (p *byteProgress) set(done, total int64) {
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

func (p *byteProgress) done() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}
