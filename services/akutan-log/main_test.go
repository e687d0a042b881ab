package main

import (
	"strings"
	"testing"
)

func TestArchiveWarning(t *testing.T) {
	base := []string{"--id", "log1", "--raft-addr", "127.0.0.1:7001", "--grpc-addr", "127.0.0.1:7101", "--data-dir", "d"}
	o, err := parseFlags(base)
	if err != nil || !strings.Contains(archiveWarning(o), "no --archive") {
		t.Errorf("without --archive: warning %q, err %v", archiveWarning(o), err)
	}
	o, err = parseFlags(append(base, "--archive", "/tmp/bucket"))
	if err != nil || archiveWarning(o) != "" {
		t.Errorf("with --archive: warning %q, err %v", archiveWarning(o), err)
	}
}
