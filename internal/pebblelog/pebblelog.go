// Package pebblelog adapts Pebble's logger to Akutan's processes: Pebble's
// routine info lines are dropped, errors go to stderr, and fatal errors end
// the process as Pebble requires.
package pebblelog

import (
	"fmt"
	"os"

	"github.com/cockroachdb/pebble/v2"
)

// Quiet logs only Pebble's errors.
type Quiet struct {
	// Name prefixes each line, e.g. the store's role.
	Name string
}

var _ pebble.Logger = Quiet{}

// Infof drops routine messages.
func (Quiet) Infof(string, ...interface{}) {}

// Errorf prints to stderr.
func (q Quiet) Errorf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "pebble %s: %s\n", q.Name, fmt.Sprintf(format, args...))
}

// Fatalf prints and exits: Pebble calls it only when it cannot go on.
func (q Quiet) Fatalf(format string, args ...interface{}) {
	q.Errorf(format, args...)
	os.Exit(70)
}
