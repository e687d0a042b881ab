package localstack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cliEnv runs bin/akutan with extra environment variables and returns its
// stdout, stderr and exit code apart.
func (s *stack) cliEnv(env []string, stdin string, args ...string) (string, string, int) {
	cmd := exec.Command(filepath.Join(s.bin, "akutan"), args...)
	cmd.Env = append(append(append([]string(nil), s.env...), "AWS_ACCESS_KEY_ID=akutan-local", "AWS_SECRET_ACCESS_KEY=akutan-local-secret"), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		s.t.Fatalf("akutan %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

func (s *stack) apiAddrs() string {
	return fmt.Sprintf("%s,%s,%s", s.api(1), s.api(2), s.api(3))
}

// cliWithDC1Down runs while dc1 (its log replica, views and API server) is
// down: the CLI, given no --api or --log, reaches dc2 or dc3. The stack's
// addresses, dc1's first, come once from the environment (AKUTAN_API) and
// once from a context of the config file, as a user would set them; the
// CLI's own defaults name the default stack's ports, which this test stack
// does not use.
func cliWithDC1Down(t *testing.T, s *stack) {
	xdg := t.TempDir()
	if err := os.MkdirAll(filepath.Join(xdg, "akutan"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("current-context: test\ncontexts:\n  test:\n    api: [%s]\n    log: [%s]\n    store: %s\n", s.apiAddrs(), s.logAddrs(), s.storeURL())
	if err := os.WriteFile(filepath.Join(xdg, "akutan", "config.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile := []string{"XDG_CONFIG_HOME=" + xdg}
	fromEnv := []string{"AKUTAN_API=" + s.apiAddrs(), "AKUTAN_LOG=" + s.logAddrs()}

	// status judges dc2 and dc3, which are fully available, and reports
	// that dc1's API server did not answer (exit 3: not all judged).
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, errOut, code := s.cliEnv(fromFile, "", "status")
		if code == 3 && strings.Contains(out, "dc2: fully available: yes") && strings.Contains(out, "dc3: fully available: yes") &&
			strings.Contains(out, "did not answer") && !strings.Contains(out, "dc1: fully") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status with dc1 down, addresses from the config file: exit %d\n%s%s", code, out, errOut)
		}
		time.Sleep(300 * time.Millisecond)
	}
	out, errOut, code := s.cliEnv(fromEnv, "", "status", "--json")
	var st struct {
		DCs []struct {
			DC             string `json:"dc"`
			AnsweredBy     string `json:"answered_by"`
			FullyAvailable struct {
				OK bool `json:"ok"`
			} `json:"fully_available"`
			Views []struct {
				DC    string `json:"dc"`
				State string `json:"state"`
			} `json:"views"`
		} `json:"dcs"`
		Unreachable []struct {
			Address string `json:"address"`
		} `json:"unreachable_api_servers"`
		Log struct {
			LastIndex uint64 `json:"last_index"`
		} `json:"log"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 3 || len(st.DCs) != 2 || len(st.Unreachable) != 1 ||
		st.Unreachable[0].Address != s.api(1) || st.Log.LastIndex == 0 {
		t.Fatalf("status --json with dc1 down: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	for _, dc := range st.DCs {
		if !dc.FullyAvailable.OK || dc.AnsweredBy == s.api(1) || len(dc.Views) == 0 {
			t.Fatalf("status --json with dc1 down: %+v", dc)
		}
		for _, v := range dc.Views {
			if v.DC != dc.DC {
				t.Fatalf("%s lists a view of %s: only its own datacenter's views count", dc.DC, v.DC)
			}
		}
	}

	// insert: dc1's API server refuses the connection, so the write was
	// never sent and goes to dc2; --json gives the new names' IDs.
	out, errOut, code = s.cliEnv(fromEnv, "<cli-dc1-down> <knows> <cli-friend>\n", "insert", "--json")
	var w struct {
		Index   uint64            `json:"index"`
		Created map[string]uint64 `json:"created"`
	}
	if err := json.Unmarshal([]byte(out), &w); err != nil || code != 0 || w.Index == 0 || w.Created["cli-dc1-down"] == 0 || w.Created["cli-friend"] == 0 {
		t.Fatalf("insert --json with dc1 down: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	out, errOut, code = s.cliEnv(fromFile, "", "lookup", "<cli-dc1-down>", "--at-least", fmt.Sprint(w.Index), "<knows>")
	if code != 0 || strings.Join(lines(out), "|") != "<cli-dc1-down> <knows> <cli-friend>" {
		t.Fatalf("lookup with dc1 down: exit %d\n%s%s", code, out, errOut)
	}

	// log info fails over to a live replica, and exits 3: dc1's replica is
	// unreachable.
	out, errOut, code = s.cliEnv(fromFile, "", "log", "info")
	if code != 3 || !strings.Contains(out, "log-dc1") || !strings.Contains(out, "leader: log-dc") {
		t.Fatalf("log info with dc1 down: exit %d, want 3\n%s%s", code, out, errOut)
	}

	// A flag still beats the file and the environment: dc1 alone fails.
	if _, errOut, code = s.cliEnv(append(fromFile, fromEnv...), "", "status", "--api", s.api(1)); code != 1 || !strings.Contains(errOut, "no API server answered") {
		t.Fatalf("status --api dc1 with dc1 down: exit %d, want 1\n%s", code, errOut)
	}
}
