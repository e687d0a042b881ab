package main

import (
	"strings"
	"testing"
)

func TestBackupClusters(t *testing.T) {
	store := t.TempDir()
	run := func(args ...string) (string, string, int) {
		return runCLI(t, nil, "", append([]string{"backup", "clusters", "--store", store}, args...)...)
	}
	if out, _, code := run(); code != 0 || !strings.Contains(out, "no clusters registered") {
		t.Fatalf("empty registry: exit %d\n%s", code, out)
	}
	for _, dc := range []string{"dc1", "dc2"} {
		if _, errOut, code := run("add", dc); code != 0 {
			t.Fatalf("add %s: exit %d: %s", dc, code, errOut)
		}
	}
	if _, _, code := run("add", "dc4", "--critical=false"); code != 0 {
		t.Fatal("add dc4 non-critical")
	}
	if _, errOut, code := run("set", "dc9", "--critical=false"); code != exitUsage || !strings.Contains(errOut, "add it first") {
		t.Fatalf("set of an unknown cluster: exit %d: %s", code, errOut)
	}
	if _, errOut, code := run("remove", "dc1"); code == 0 || !strings.Contains(errOut, "non-critical") {
		t.Fatalf("remove of a critical cluster: exit %d: %s", code, errOut)
	}
	if _, _, code := run("set", "dc1", "--critical=false"); code != 0 {
		t.Fatal("set dc1 non-critical")
	}
	if _, _, code := run("remove", "dc1"); code != 0 {
		t.Fatal("remove dc1")
	}
	out, _, code := run("--json")
	m := decode(t, out)
	if crit, _ := m["critical"].([]any); code != 0 || len(crit) != 1 || crit[0] != "dc2" {
		t.Fatalf("list --json: exit %d: %v", code, m)
	}
	if cl, _ := m["clusters"].([]any); len(cl) != 2 {
		t.Fatalf("clusters: %v", m["clusters"])
	}
}
