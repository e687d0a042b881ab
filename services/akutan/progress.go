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
