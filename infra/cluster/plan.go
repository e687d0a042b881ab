package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Step is one step of a procedure. Before it runs, the runner observes the
// database afresh and Check (when set) judges that state: a refusal stops
// the procedure before the step changes anything.
type Step struct {
	What  string
	Check func(ctx context.Context, st *State) error
	Do    func(ctx context.Context) error
}

// Plan is a procedure's steps, in order.
type Plan struct {
	Title string
	Steps []Step
}

// observer is what a Runner needs of an Observer.
type observer interface {
	Observe(ctx context.Context) (*State, error)
}

// Runner prints a plan and, unless DryRun, runs it step by step.
type Runner struct {
	Obs    observer
	Out    io.Writer
	DryRun bool
	// Settle is how long a refusing gate is observed again before the
	// refusal stands (0: at once).
	Settle time.Duration
}

// Run prints the plan, then runs each step after observing the state and
// checking the step's gate. It stops at the first refusal or failure and
// says which step it was; the procedures are idempotent, so running the
// command again continues.
func (r *Runner) Run(ctx context.Context, p *Plan) error {
	fmt.Fprintf(r.Out, "plan: %s (%d steps)\n", p.Title, len(p.Steps))
	for i, s := range p.Steps {
		fmt.Fprintf(r.Out, "  %2d. %s\n", i+1, s.What)
	}
	st, err := r.Obs.Observe(ctx)
	if err != nil {
		return fmt.Errorf("observe: %w", err)
	}
	fmt.Fprintf(r.Out, "now: %s\n", st.Summary())
	if len(p.Steps) == 0 {
		fmt.Fprintln(r.Out, "nothing to do")
		return nil
	}
	if r.DryRun {
		if len(p.Steps) > 0 && p.Steps[0].Check != nil {
			if err := p.Steps[0].Check(ctx, st); err != nil {
				fmt.Fprintf(r.Out, "step 1 would be refused now: %v\n", err)
			}
		}
		fmt.Fprintln(r.Out, "dry run: nothing was changed")
		return nil
	}
	start := time.Now()
	for i, s := range p.Steps {
		if i > 0 {
			if st, err = r.Obs.Observe(ctx); err != nil {
				return fmt.Errorf("step %d (%s): observe: %w", i+1, s.What, err)
			}
		}
		if s.Check != nil {
			if err := r.check(ctx, s, st); err != nil {
				return fmt.Errorf("step %d (%s): %w", i+1, s.What, err)
			}
		}
		fmt.Fprintf(r.Out, "[%d/%d] %s\n", i+1, len(p.Steps), s.What)
		t := time.Now()
		if err := s.Do(ctx); err != nil {
			return fmt.Errorf("step %d (%s): %w", i+1, s.What, err)
		}
		fmt.Fprintf(r.Out, "      done in %.1fs\n", time.Since(t).Seconds())
	}
	st, err = r.Obs.Observe(ctx)
	if err == nil {
		fmt.Fprintf(r.Out, "after: %s\n", st.Summary())
	}
	fmt.Fprintf(r.Out, "%s: done, %d steps in %.1fs\n", p.Title, len(p.Steps), time.Since(start).Seconds())
	return nil
}

// check runs the step's gate on st and, while it refuses, observes again
// every second for up to Settle: a refusal is often a passing state (an
// election after a voter died, a view still catching up), and an operator
// would only rerun the command.
func (r *Runner) check(ctx context.Context, s Step, st *State) error {
	err := s.Check(ctx, st)
	if err == nil || r.Settle <= 0 {
		return err
	}
	fmt.Fprintf(r.Out, "      waiting up to %s: %v\n", r.Settle, err)
	deadline := time.Now().Add(r.Settle)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
		st, oerr := r.Obs.Observe(ctx)
		if oerr != nil {
			continue
		}
		if err = s.Check(ctx, st); err == nil {
			return nil
		}
	}
	return err
}

// Summary is one line: the log, then each DC's verdict.
func (s *State) Summary() string {
	var b strings.Builder
	switch {
	case s.LogAvailable:
		fmt.Fprintf(&b, "log available (leader %s, last index %d)", s.Log.GetLeaderId(), s.Log.GetLastIndex())
	default:
		fmt.Fprintf(&b, "log NOT available (%v)", s.LogErr)
	}
	var dcs []string
	for dc := range s.DCs {
		dcs = append(dcs, dc)
	}
	for dc := range s.Unanswered {
		dcs = append(dcs, dc)
	}
	sort.Strings(dcs)
	for _, dc := range dcs {
		switch st := s.DCs[dc]; {
		case st == nil:
			fmt.Fprintf(&b, "; %s: no API server answered", dc)
		case st.GetHealthy().GetOk():
			fmt.Fprintf(&b, "; %s: healthy", dc)
		case st.GetFullyAvailable().GetOk():
			fmt.Fprintf(&b, "; %s: fully available", dc)
		default:
			fmt.Fprintf(&b, "; %s: NOT fully available (%s)", dc, strings.Join(st.GetFullyAvailable().GetMissing(), "; "))
		}
	}
	return b.String()
}

// errTimeout is wrapped by a wait that ran out of time.
var errTimeout = errors.New("timed out")

// waitFor polls the observation every poll until cond holds, for at most
// timeout; cond says what it still waits for.
func waitFor(ctx context.Context, obs observer, poll, timeout time.Duration, cond func(*State) (bool, string)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := "nothing observed"
	for {
		st, err := obs.Observe(ctx)
		if err == nil {
			var ok bool
			if ok, last = cond(st); ok {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w after %s: %s", errTimeout, timeout, last)
		case <-time.After(poll):
		}
	}
}
