package cluster

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/akutan/akutan/proto/logpb"
)

// seqObs observes the log unavailable for the first n observations, then
// available: a leader election after a voter died.
type seqObs struct {
	n     int32
	calls atomic.Int32
}

func (o *seqObs) Observe(context.Context) (*State, error) {
	ok := o.calls.Add(1) > o.n
	return &State{LogAvailable: ok, Log: &logpb.InfoResponse{}}, nil
}

func TestRunnerSettlesPassingRefusals(t *testing.T) {
	gate := func(_ context.Context, st *State) error {
		if !st.LogAvailable {
			return refuse("the log is not available")
		}
		return nil
	}
	ran := false
	plan := &Plan{Title: "test", Steps: []Step{{What: "one", Check: gate, Do: func(context.Context) error { ran = true; return nil }}}}
	var out strings.Builder
	// Unavailable for the first two observations: settled within Settle.
	if err := (&Runner{Obs: &seqObs{n: 2}, Out: &out, Settle: 5 * time.Second}).Run(context.Background(), plan); err != nil || !ran {
		t.Fatalf("settle: %v, ran %v\n%s", err, ran, out.String())
	}
	if !strings.Contains(out.String(), "waiting up to 5s: refused: the log is not available") {
		t.Fatalf("the wait was not reported:\n%s", out.String())
	}
	// Unavailable for longer than Settle: the refusal stands, nothing ran.
	ran = false
	start := time.Now()
	err := (&Runner{Obs: &seqObs{n: 100}, Out: &out, Settle: 1500 * time.Millisecond}).Run(context.Background(), plan)
	if !errors.Is(err, ErrRefused) || ran || time.Since(start) > 10*time.Second {
		t.Fatalf("a lasting refusal: %v, ran %v after %s", err, ran, time.Since(start))
	}
}
