package buildinfo

import (
	"strings"
	"testing"
)

func TestGetFillsEverything(t *testing.T) {
	i := Get()
	if i.Version == "" || i.Commit == "" || i.Date == "" || i.GoVersion == "" {
		t.Fatalf("empty field: %+v", i)
	}
	if s := i.String(); !strings.Contains(s, i.Version) || !strings.Contains(s, "commit "+i.Commit) {
		t.Fatalf("String() = %q", s)
	}
}
