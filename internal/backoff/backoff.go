// Package backoff is Akutan's one retry delay: exponential with full
// jitter over the upper half, capped, and honouring ctx. It says only how
// long to wait; what may be retried is the caller's decision (STYLE 17).
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is the delay before the next retry. The zero value is not
// usable: set Min and Max, or use New.
type Backoff struct {
	Min, Max time.Duration
	cur      time.Duration
}

// New returns a Backoff from min doubling up to max.
func New(min, max time.Duration) *Backoff { return &Backoff{Min: min, Max: max} }

// Next returns the next delay, in [d/2, d] for the current step d, and
// doubles the step up to Max.
func (b *Backoff) Next() time.Duration {
	if b.cur < b.Min {
		b.cur = b.Min
	}
	d := b.cur
	b.cur = min(2*b.cur, b.Max)
	return d/2 + rand.N(d/2+1)
}

// Reset starts again from Min, after a success.
func (b *Backoff) Reset() { b.cur = 0 }

// Wait sleeps for Next, or returns ctx's error when ctx ends first.
func (b *Backoff) Wait(ctx context.Context) error {
	t := time.NewTimer(b.Next())
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
