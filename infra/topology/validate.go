package topology

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with a topology, and where.
type Problem struct {
	// Where is the place in the file, such as
	// "datacenters[1] (dc2).views.HashSP.ranges[0]", or a server's name.
	Where string
	What  string
}

func (p Problem) String() string { return p.Where + ": " + p.What }

// ValidationError lists every problem Validate found.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v: %d problem(s):", ErrInvalid, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Is makes errors.Is(err, ErrInvalid) hold.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Validate reports every problem of the topology at once, each with its
// place, as a *ValidationError; nil when there is none. See the package
// documentation for the rules.
func (t *Topology) Validate() error {
	_, problems := t.resolve()
	if len(problems) == 0 {
		return nil
	}
	return &ValidationError{Problems: problems}
}
