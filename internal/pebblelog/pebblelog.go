// Package pebblelog adapts Pebble's logger to Akutan's processes: Pebble's
// routine info lines are dropped, errors are logged, and a fatal error
// panics, since Pebble requires Fatalf not to return.
package pebblelog

import (
	"errors"
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

// Fatalf logs and panics: Pebble calls it only when it cannot go on, and
// requires that it not return. Pebble treats a failed write of its MANIFEST
// or WAL as fatal, so a full disk can end here: the process exits, and its
// supervisor restarts it; the restart opens the data directory again (and
// fails with a clear error while the disk is still full). Every store of
// ours recovers from its directory: a view re-applies the log from its last
// flushed index, a log replica from Raft's log.
func (q Quiet) Fatalf(format string, args ...interface{}) {
	msg := fmt.Sprintf(format, args...)
	if IsDiskFull(errors.New(msg)) {
		l := q.Logger
		if l == nil {
			l = slog.Default()
		}
		l.Error("pebble: the disk is full and the store cannot continue; exiting: restart once space is freed", "store", q.Name, "err", msg)
	} else {
		q.Errorf("%s", msg)
	}
	panic(fmt.Sprintf("pebble %s: %s", q.Name, msg))
}
