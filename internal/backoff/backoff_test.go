package backoff

import (
	"context"
	"testing"
	"time"
)

func TestNextDoublesWithinJitterUpToMax(t *testing.T) {
	b := New(10*time.Millisecond, 80*time.Millisecond)
	for i, step := range []time.Duration{10, 20, 40, 80, 80, 80} {
		step *= time.Millisecond
		if d := b.Next(); d < step/2 || d > step {
			t.Fatalf("delay %d: %v, want in [%v, %v]", i, d, step/2, step)
		}
	}
	b.Reset()
	if d := b.Next(); d > 10*time.Millisecond {
		t.Fatalf("after Reset: %v", d)
	}
}

func TestWaitHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := New(time.Hour, time.Hour)
	t0 := time.Now()
	if err := b.Wait(ctx); err != context.Canceled || time.Since(t0) > time.Second {
		t.Fatalf("Wait on a done context: %v after %v", err, time.Since(t0))
	}
}
