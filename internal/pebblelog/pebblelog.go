// Package pebblelog adapts Pebble's logger to Akutan's processes: Pebble's
// routine info lines are dropped, errors are logged, and a fatal error
// panics, since Pebble requires Fatalf not to return.
package pebblelog

import (
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
)

// Quiet logs only Pebble's errors.
type Quiet struct {
	// Name says which store the lines are about, e.g. "entries".
	Name string
	// Logger receives the errors; nil means slog.Default().
	Logger *slog.Logger
}

var _ pebble.Logger = Quiet{}

// Infof drops routine messages.
func (Quiet) Infof(string, ...interface{}) {}

// Errorf logs an error.
func (q Quiet) Errorf(format string, args ...interface{}) {
	l := q.Logger
	if l == nil {
		l = slog.Default()
	}
	l.Error("pebble: "+fmt.Sprintf(format, args...), "store", q.Name)
}

// Fatalf logs and panics: Pebble calls it only when it cannot go on.
func (q Quiet) Fatalf(format string, args ...interface{}) {
	q.Errorf(format, args...)
	panic(fmt.Sprintf("pebble %s: "+format, append([]interface{}{q.Name}, args...)...))
}
