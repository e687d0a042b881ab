package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTopologyServers checks the lines localstack/lib.sh reads, the
// filters, and that AKUTAN_BASE_PORT and AKUTAN_PARTITIONS reach the flags.
func TestTopologyServers(t *testing.T) {
	file := filepath.Join("..", "..", "localstack", "topology.yaml")
	out, errOut, code := runCLI(t, nil, "", "topology", "servers", "-f", file, "--dc", "dc2", "--role", "view", "--base-port", "20000")
	want := "view\tdc2\tview-dc2-sp-p0-r0\t127.0.0.1:20401\t-\tHashSP\t0x0\t0x8000000000000000\n" +
		"view\tdc2\tview-dc2-sp-p1-r0\t127.0.0.1:20402\t-\tHashSP\t0x8000000000000000\tmax\n" +
		"view\tdc2\tview-dc2-po-p0-r0\t127.0.0.1:20403\t-\tHashPO\t0x0\t0x8000000000000000\n" +
		"view\tdc2\tview-dc2-po-p1-r0\t127.0.0.1:20404\t-\tHashPO\t0x8000000000000000\tmax\n"
	if code != 0 || out != want {
		t.Fatalf("exit %d, stderr %q, stdout:\n%s\nwant:\n%s", code, errOut, out, want)
	}
	out, _, code = runCLI(t, map[string]string{"AKUTAN_TOPOLOGY": file, "AKUTAN_BASE_PORT": "21000", "AKUTAN_PARTITIONS": "1"},
		"", "topology", "servers", "--role", "log")
	if code != 0 || !strings.HasPrefix(out, "log\tdc1\tlog-dc1\t127.0.0.1:21101\t127.0.0.1:21001\t-\t-\t-\n") || strings.Count(out, "\n") != 3 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	out, _, _ = runCLI(t, map[string]string{"AKUTAN_PARTITIONS": "1"}, "", "topology", "servers", "-f", file, "--role", "view")
	if n := strings.Count(out, "\n"); n != 6 {
		t.Fatalf("%d views with AKUTAN_PARTITIONS=1:\n%s", n, out)
	}
	if _, _, code := runCLI(t, nil, "", "topology", "servers", "-f", file, "--role", "raft"); code != exitUsage {
		t.Fatalf("--role raft: exit %d", code)
	}
}

func TestTopologyCheck(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: 1\ndatacenters:\n  - name: dc1\n    log_voters: 1\n"+
		"    api_servers: 1\n    views:\n      HashSP: {partitions: 1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code := runCLI(t, nil, "", "topology", "check", "-f", bad)
	if code != exitProblems || !strings.Contains(out, "datacenters[0] (dc1).views: no HashPO") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	out, _, code = runCLI(t, nil, "", "topology", "check", "-f", filepath.Join("..", "..", "localstack", "topology.yaml"))
	if code != 0 || out != "ok: 3 datacenter(s), 3 log voter(s), 12 view(s), 3 API server(s)\n" {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}
