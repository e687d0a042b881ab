package snapshot

import (
	"testing"
	"time"
)

// SetMinGrace lowers the minimum grace period for one test: the only way
// to go below MinGrace, deliberately not a flag or a setting.
func SetMinGrace(t testing.TB, d time.Duration) {
	old := minGrace
	minGrace = d
	t.Cleanup(func() { minGrace = old })
}
