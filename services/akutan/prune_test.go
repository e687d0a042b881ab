package main

import (
	"strings"
	"testing"
)

// The JSON of a prune pass always has the list of what it skipped, and
// the text says nothing of it when nothing was skipped. What is skipped,
// and why, is tested in infra/backup.
func TestPruneSkippedShape(t *testing.T) {
	dir := t.TempDir()
	if _, errOut, code := runCLI(t, nil, "", "backup", "init", "--store", dir); code != 0 {
		t.Fatalf("init: exit %d: %s", code, errOut)
	}
	out, errOut, code := runCLI(t, nil, "", "backup", "prune", "--json", "--store", dir)
	if code != 0 {
		t.Fatalf("prune: exit %d: %s", code, errOut)
	}
	if got, ok := decode(t, out)["skipped"].([]any); !ok || len(got) != 0 {
		t.Errorf("prune --json: skipped = %v, want []\n%s", got, out)
	}
	out, errOut, code = runCLI(t, nil, "", "backup", "prune", "--store", dir)
	if code != 0 || strings.Contains(out, "skipped") || !strings.Contains(out, "retired 0 checkpoints") {
		t.Errorf("prune: exit %d, out %q, err %q", code, out, errOut)
	}
}
