package localstack

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestVersionChange runs the design's version change on the stack (one
// partition per space): `akutan log set-version 2` is refused while one view
// supports only version 1, naming that view alone, even with every other
// server upgraded; once that view is upgraded too the change is appended,
// writes go on at version 2, and reads in another DC see them.
//
// "Upgraded" is simulated: a server restarted with
// AKUTAN_MAX_SUPPORTED_VERSION=2 in its environment (its
// --max-supported-version flag) supports version 2.
func TestVersionChange(t *testing.T) {
	s := newStack(t)
	s.env = append(s.env, "AKUTAN_PARTITIONS=1")
	s.mustRun("up.sh")
	apis := strings.Join([]string{s.api(1), s.api(2), s.api(3)}, ",")
	logs := fmt.Sprintf("127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", s.base+101, s.base+102, s.base+103)
	setVersion := func(extra ...string) (string, int) {
		return s.cli("", append([]string{"log", "set-version", "2", "--api", apis, "--log", logs}, extra...)...)
	}
	if out, code := s.cli("", "insert", "--api", s.api(1), "demo.facts"); code != 0 {
		t.Fatalf("insert: %s", out)
	}

	// Everything supports only version 1: refused, naming every server.
	out, code := setVersion("--yes")
	if code != 3 || !strings.Contains(out, "do not support version 2") || !strings.Contains(out, "log log-dc1") {
		t.Fatalf("set-version with nothing upgraded: exit %d\n%s", code, out)
	}

	// Upgrade every server but one view.
	const old = "view-dc1-sp-p0-r0"
	s.upgrade(func(name string) bool { return name != old })
	out, code = setVersion("--yes")
	want := fmt.Sprintf("refused: 1 server(s) do not support version 2 or could not be asked: view %s (dc1)", s.view(1, 1))
	if code != 3 || !strings.Contains(out, want) {
		t.Fatalf("set-version with view %s at version 1: exit %d, want 3 and %q\n%s", old, code, want, out)
	}
	if v := logVersion(t, s, logs); v != 1 {
		t.Fatalf("a refused change moved the log to version %d", v)
	}

	// Upgrade it too: a dry run changes nothing, then the change is made.
	s.upgrade(func(name string) bool { return name == old })
	out, code = setVersion("--dry-run")
	if code != 0 || !strings.Contains(out, "dry run: would append a version change to 2, as an entry of version 1") || logVersion(t, s, logs) != 1 {
		t.Fatalf("dry run: exit %d\n%s", code, out)
	}
	out, code = setVersion("--yes")
	if code != 0 || !strings.Contains(out, "the log is at version 2") {
		t.Fatalf("set-version with every server upgraded: exit %d\n%s", code, out)
	}
	if v := logVersion(t, s, logs); v != 2 {
		t.Fatalf("log version %d after the change", v)
	}

	// Writes go on, at version 2 (an API server may write version 1, still
	// valid, until its next refresh of the log's version, 5 s), and every
	// DC reads them.
	var index uint64
	for i, deadline := 0, time.Now().Add(30*time.Second); ; i++ {
		out, code := s.cli(fmt.Sprintf("<v2> <step> %d\n", i), "insert", "--api", s.api(1))
		if code != 0 {
			t.Fatalf("write after the change: %s", out)
		}
		index = indexOf(t, out)
		if entryVersion(t, s, logs, index) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes after the change are still of version 1 (index %d)", index)
		}
		time.Sleep(time.Second)
	}
	for dc := 1; dc <= 3; dc++ {
		got, code := s.cli("", "lookup", "--api", s.api(dc), "--at-least", fmt.Sprint(index), "<v2>", "<step>")
		if code != 0 || len(lines(got)) == 0 {
			t.Fatalf("read in dc%d at least %d: exit %d %s", dc, index, code, got)
		}
	}
	// A rerun has nothing to do.
	if out, code := setVersion("--yes"); code != 0 || !strings.Contains(out, "already at version 2") {
		t.Fatalf("rerun: exit %d\n%s", code, out)
	}
}

// upgrade stops the stack's log replicas, views and API servers that pick
// names, and starts them again with support for version 2.
func (s *stack) upgrade(pick func(name string) bool) {
	s.t.Helper()
	files, _ := filepath.Glob(filepath.Join(s.dir, "pids", "*.pid"))
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".pid")
		server := strings.HasPrefix(name, "log-") || strings.HasPrefix(name, "view-") || strings.HasPrefix(name, "api-")
		if server && pick(name) {
			s.stopProcess(name)
		}
	}
	env := s.env
	s.env = append(append([]string(nil), env...), "AKUTAN_MAX_SUPPORTED_VERSION=2")
	s.mustRun("up.sh")
	s.env = env
}

// stopProcess stops one process of the stack, as lib.sh's stop does.
func (s *stack) stopProcess(name string) {
	pid := s.pid(name)
	syscall.Kill(pid, syscall.SIGTERM)
	for deadline := time.Now().Add(10 * time.Second); syscall.Kill(pid, 0) == nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	os.Remove(filepath.Join(s.dir, "pids", name+".pid"))
}

func logVersion(t testing.TB, s *stack, logs string) uint32 {
	out, code := s.cli("", "log", "info", "--log", logs, "--linearizable", "--json")
	var in struct {
		LogVersion uint32 `json:"log_version"`
	}
	if err := json.Unmarshal([]byte(out), &in); err != nil {
		t.Fatalf("log info: exit %d: %v\n%s", code, err, out)
	}
	return in.LogVersion
}

func entryVersion(t testing.TB, s *stack, logs string, index uint64) uint32 {
	out, code := s.cli("", "log", "tail", "--log", logs, "--from", fmt.Sprint(index), "--json", "--store", "")
	var tail struct {
		Entries []struct {
			Index   uint64 `json:"index"`
			Version uint32 `json:"version"`
		} `json:"entries"`
	}
	if err := json.Unmarshal([]byte(out), &tail); err != nil || len(tail.Entries) == 0 || tail.Entries[0].Index != index {
		t.Fatalf("log tail from %d: exit %d: %v\n%s", index, code, err, out)
	}
	return tail.Entries[0].Version
}
