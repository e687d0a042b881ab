package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/akutan/akutan/apisvc/apiclient"
	"github.com/akutan/akutan/proto/apipb"
)

// build compiles akutan-api with the given build tags into a temp dir.
func build(t *testing.T, tags string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "akutan-api")
	args := []string{"build", "-o", bin}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestConfigOrder runs the real binary with --print-config: the flag beats
// the environment, which beats the --config file, which beats the default.
func TestConfigOrder(t *testing.T) {
	bin := build(t, "")
	conf := filepath.Join(t.TempDir(), "api.conf")
	err := os.WriteFile(conf, []byte(`# akutan-api configuration
listen 127.0.0.1:1111
log 127.0.0.1:2001
views 127.0.0.1:3001
peers 127.0.0.1:4001
dc dc-file
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", conf, "--listen", "127.0.0.1:2222", "--print-config")
	cmd.Env = append(os.Environ(), "AKUTAN_LISTEN=127.0.0.1:3333", "AKUTAN_LOG=127.0.0.1:2002", "AKUTAN_DC=dc-env", "AKUTAN_SECRET_TOKEN=x")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("--print-config: %v\n%s", err, out)
	}
	for _, want := range []string{
		"\nlisten 127.0.0.1:2222\n", // flag > env > file
		"\nlog 127.0.0.1:2002\n",    // env > file
		"\ndc dc-env\n",             // env > file
		"\nviews 127.0.0.1:3001\n",  // file > default
		"\nmax-lag 1000\n",          // default
		"\nlog-format text\n",
		"\nconfig " + conf + "\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("--print-config lacks %q:\n%s", strings.TrimSpace(want), out)
		}
	}
	out, err = exec.Command(bin, "--version").Output()
	if err != nil || !regexp.MustCompile(`^akutan-api \S+ \(commit \S+, built \S+, go`).Match(out) {
		t.Errorf("--version: %v %q", err, out)
	}
}

// TestPanicInjection builds akutan-api with -tags akutanpanic, whose LookupS
// of the name __panic__ panics inside the handler chain: the call answers
// INTERNAL, the stack is logged, and the server keeps serving.
func TestPanicInjection(t *testing.T) {
	bin := build(t, "akutanpanic")
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--log", "127.0.0.1:1", "--views", "127.0.0.1:2", "--http-addr", "127.0.0.1:0", "--dc", "dc1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	addr := make(chan string, 1)
	var logs strings.Builder
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		re := regexp.MustCompile(`msg=serving .*grpc=(\S+)`)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	var a string
	select {
	case a = <-addr:
	case <-time.After(30 * time.Second):
		t.Fatal("akutan-api did not start")
	}
	cc, err := grpc.NewClient(a, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	api := apipb.NewAkutanClient(cc)
	panicky := &apipb.LookupSRequest{Subjects: []*apipb.Node{{Ref: &apipb.Node_Name{Name: "__panic__"}}}}
	for i := 0; i < 2; i++ {
		_, err := apiclient.LookupS(ctx, api, panicky)
		if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "injected panic") {
			t.Fatalf("call %d: %v, want INTERNAL from the injected panic", i, err)
		}
	}
	// The process still serves: a normal lookup gets a normal answer (no
	// views and no log: the server's own Unavailable, not INTERNAL), and
	// the health service answers.
	if _, err := apiclient.LookupS(ctx, api, &apipb.LookupSRequest{Subjects: []*apipb.Node{{Ref: &apipb.Node_Name{Name: "alice"}}}}); status.Code(err) == codes.Internal || !strings.Contains(err.Error(), "unavailable") {
		t.Fatalf("a normal lookup after the panic: %v", err)
	}
	if _, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health after the panic: %v", err)
	}
	_ = cmd.Process.Signal(os.Interrupt)
	<-logged
	if !strings.Contains(logs.String(), "panic in a gRPC handler") || !strings.Contains(logs.String(), "goroutine") {
		t.Fatalf("the panic's stack is not logged:\n%s", logs.String())
	}
}
