package localstack

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// stack runs the local stack's scripts against binaries built for the test,
// in a temporary state dir, on ports no other test uses.
type stack struct {
	t   *testing.T
	env []string
}

func newStack(t *testing.T) *stack {
	if testing.Short() {
		t.Skip("starts processes")
	}
	bin := t.TempDir()
	out, err := exec.Command("go", "build", "-o", bin, "github.com/akutan/akutan/services/...").CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	s := &stack{t: t, env: append(os.Environ(),
		"AKUTAN_BIN="+bin,
		"AKUTAN_STACK_DIR="+filepath.Join(t.TempDir(), "stack"),
		fmt.Sprintf("AKUTAN_BASE_PORT=%d", freeBase(t)),
	)}
	t.Cleanup(func() { s.run("down.sh") })
	return s
}

// freeBase finds a base port whose Raft and gRPC ports are all free.
func freeBase(t *testing.T) int {
	for try := 0; try < 50; try++ {
		base := 20000 + 200*rand.N(200)
		ok := true
		for _, off := range []int{1, 2, 3, 101, 102, 103} {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+off))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

func (s *stack) run(script string, args ...string) (string, error) {
	cmd := exec.Command("bash", append([]string{script}, args...)...)
	cmd.Env = s.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (s *stack) cli(args ...string) (string, int) {
	var bin, base string
	for _, e := range s.env {
		if v, ok := strings.CutPrefix(e, "AKUTAN_BIN="); ok {
			bin = v
		}
		if v, ok := strings.CutPrefix(e, "AKUTAN_BASE_PORT="); ok {
			base = v
		}
	}
	var b int
	fmt.Sscan(base, &b)
	addrs := fmt.Sprintf("127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", b+101, b+102, b+103)
	cmd := exec.Command(filepath.Join(bin, "akutan"), append(args, "--log", addrs)...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	return string(out), code
}

// The user's path: make up, look, fail a datacenter, bring it back, make down.
func TestStackUpDcFailureDown(t *testing.T) {
	s := newStack(t)
	out, err := s.run("up.sh")
	if err != nil {
		t.Fatalf("up: %v\n%s", err, out)
	}
	if !strings.Contains(out, "local stack is up") {
		t.Fatalf("up said:\n%s", out)
	}
	if out, code := s.cli("log", "info", "--linearizable"); code != 0 || strings.Count(out, " ok") != 3 {
		t.Fatalf("info after up (exit %d):\n%s", code, out)
	}

	if out, err := s.run("dc.sh", "down", "dc1"); err != nil {
		t.Fatalf("dc down: %v\n%s", err, out)
	}
	// Two of three replicas keep the log available; info flags the loss.
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, code := s.cli("log", "info", "--linearizable")
		if code == 3 && strings.Contains(out, "unreachable") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("info with dc1 down (exit %d):\n%s", code, out)
		}
		time.Sleep(100 * time.Millisecond)
	}

	if out, err := s.run("dc.sh", "up", "dc1"); err != nil {
		t.Fatalf("dc up: %v\n%s", err, out)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		out, code := s.cli("log", "info")
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("info after dc1 came back (exit %d):\n%s", code, out)
		}
		time.Sleep(100 * time.Millisecond)
	}

	out, err = s.run("down.sh")
	if err != nil || strings.Count(out, "stopped") != 3 {
		t.Fatalf("down: %v\n%s", err, out)
	}
	if _, code := s.cli("log", "info"); code == 0 {
		t.Fatal("log still answers after down")
	}
}
