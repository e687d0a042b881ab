package lifecycle

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/akutan/akutan/internal/buildinfo"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/akutan/akutan/proto/viewpb"
)

func TestConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "akutan.conf")
	conf := "# a comment\nfrom-file file\nfile-and-env file\nall-three file # trailing comment\nlog-level warn\n"
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AKUTAN_FILE_AND_ENV", "env")
	t.Setenv("AKUTAN_ALL_THREE", "env")
	t.Setenv("AKUTAN_FROM_ENV", "env")
	p := New("akutan-test", "test", "")
	vals := map[string]*string{}
	for _, n := range []string{"from-file", "from-env", "file-and-env", "all-three", "untouched"} {
		vals[n] = p.Flags.String(n, "default", "")
	}
	p.Flags.String("secret-key", "hunter2", "")
	if err := p.Parse([]string{"--config", file, "--all-three", "flag"}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"from-file": "file", "from-env": "env", "file-and-env": "env", "all-three": "flag", "untouched": "default"}
	for n, w := range want {
		if *vals[n] != w {
			t.Errorf("%s = %q, want %q", n, *vals[n], w)
		}
	}
	if p.logLevel != "warn" {
		t.Errorf("log-level from the file: %q", p.logLevel)
	}
	var out bytes.Buffer
	p.PrintConfig(&out)
	for _, line := range []string{"all-three flag\n", "file-and-env env\n", "secret-key <redacted>\n", "# http-addr (empty)\n"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("print-config lacks %q:\n%s", line, out.String())
		}
	}
	if strings.Contains(out.String(), "hunter2") {
		t.Errorf("print-config shows a secret:\n%s", out.String())
	}
}

func TestVersionAndBadFlags(t *testing.T) {
	p := New("akutan-test", "test", "")
	var out bytes.Buffer
	p.stdout = &out
	if err := p.Parse([]string{"--version"}); !errors.Is(err, ErrExit) || !strings.HasPrefix(out.String(), "akutan-test ") || !strings.Contains(out.String(), "commit ") {
		t.Fatalf("--version: %v %q", err, out.String())
	}
	// A server's --version also says which log versions it reads, in the
	// form the control plane parses.
	p = New("akutan-test", "test", "")
	out.Reset()
	p.stdout = &out
	if v := p.MaxLogVersion(4); v != 4 {
		t.Fatalf("MaxLogVersion(4) = %d", v)
	}
	if err := p.Parse([]string{"--version"}); !errors.Is(err, ErrExit) {
		t.Fatalf("--version: %v", err)
	}
	if build, v, err := buildinfo.ParseBanner(out.String()); err != nil || v != 4 || build != buildinfo.Get().String() {
		t.Fatalf("--version printed %q: %q %d %v", out.String(), build, v, err)
	}
	p = New("akutan-test", "test", "")
	p.Flags.SetOutput(io.Discard)
	if err := p.Parse([]string{"--log-format", "xml"}); err == nil {
		t.Fatal("--log-format xml accepted")
	}
}

// panicky is a view service whose Status panics on the magic request
// (a Status call carrying metadata is simpler; here, every other call) and
// whose LookupS stream panics when asked for subject 666.
type panicky struct {
	viewpb.UnimplementedViewServer
	calls atomic.Int64
}

func (s *panicky) Status(context.Context, *viewpb.StatusRequest) (*viewpb.StatusResponse, error) {
	if s.calls.Add(1)%2 == 1 {
		panic("injected")
	}
	return &viewpb.StatusResponse{LastApplied: 7}, nil
}

func (s *panicky) LookupS(req *viewpb.LookupSRequest, stream grpc.ServerStreamingServer[viewpb.LookupResponse]) error {
	if len(req.Subjects) > 0 && req.Subjects[0] == 666 {
		panic("injected in a stream")
	}
	return stream.Send(&viewpb.LookupResponse{Index: 1})
}

// TestPanicRecoveryOverLoopback runs the interceptor chain on a real gRPC
// server: a handler's panic answers INTERNAL, is counted and logged, and
// the server goes on serving.
func TestPanicRecoveryOverLoopback(t *testing.T) {
	p := New("akutan-test", "test", "")
	var logs bytes.Buffer
	p.stderr = &logs
	if err := p.Parse([]string{"--http-addr", "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(p.ServerOptions()...)
	viewpb.RegisterViewServer(srv, &panicky{})
	p.RegisterGRPC(srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	defer srv.Stop()
	ready := atomic.Bool{}
	p.SetReady(func(context.Context) error {
		if !ready.Load() {
			return errors.New("not yet")
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := viewpb.NewViewClient(cc)
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
	defer ccancel()
	if _, err := c.Status(cctx, &viewpb.StatusRequest{}); status.Code(err) != codes.Internal {
		t.Fatalf("panicking call: %v, want INTERNAL", err)
	}
	if st, err := c.Status(cctx, &viewpb.StatusRequest{}); err != nil || st.LastApplied != 7 {
		t.Fatalf("next call: %v %v", st, err)
	}
	stream, err := c.LookupS(cctx, &viewpb.LookupSRequest{Subjects: []uint64{666}})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Internal {
		t.Fatalf("panicking stream: %v, want INTERNAL", err)
	}
	stream, err = c.LookupS(cctx, &viewpb.LookupSRequest{Subjects: []uint64{1}})
	if err == nil {
		_, err = stream.Recv()
	}
	if err != nil {
		t.Fatalf("next stream: %v", err)
	}
	if !strings.Contains(logs.String(), "injected") || !strings.Contains(logs.String(), "goroutine") {
		t.Errorf("the panic and its stack are not logged:\n%.2000s", logs.String())
	}

	// Health and /readyz follow the readiness check.
	hc := healthpb.NewHealthClient(cc)
	check := func(service string) healthpb.HealthCheckResponse_ServingStatus {
		r, err := hc.Check(cctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatalf("health %q: %v", service, err)
		}
		return r.Status
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + p.HTTPAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if s := check(""); s != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health before ready: %v", s)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "not yet") {
		t.Fatalf("/readyz before ready: %d %q", code, body)
	}
	ready.Store(true)
	deadline := time.Now().Add(5 * time.Second)
	for check(viewpb.View_ServiceDesc.ServiceName) != healthpb.HealthCheckResponse_SERVING {
		if time.Now().After(deadline) {
			t.Fatal("health never SERVING")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := get("/readyz"); code != 200 {
		t.Fatalf("/readyz when ready: %d %q", code, body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("/healthz: %d", code)
	}
	if code, _ := get("/debug/pprof/"); code != 404 {
		t.Fatalf("pprof without --pprof: %d", code)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{
		`akutan_build_info{commit=`, `role="test"`,
		`akutan_test_requests_total{code="Internal",method="/akutan.view.v1.View/Status"} 1`,
		`akutan_test_requests_total{code="OK",method="/akutan.view.v1.View/Status"} 1`,
		`akutan_test_requests_total{code="Internal",method="/akutan.view.v1.View/LookupS"} 1`,
		`akutan_test_request_duration_seconds_bucket{method="/akutan.view.v1.View/LookupS"`,
		`go_goroutines`, `process_cpu_seconds_total`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestStaleVerdictIsReevaluated(t *testing.T) {
	r := newReadiness(nil)
	r.log = func() *slogLogger { return discardLogger }
	r.interval = 50 * time.Millisecond
	var n atomic.Int64
	r.setCheck(func(context.Context) error { n.Add(1); return nil })
	ctx := context.Background()
	if err := r.verdict(ctx); err != nil || n.Load() != 1 {
		t.Fatalf("first verdict %v after %d checks", err, n.Load())
	}
	_ = r.verdict(ctx)
	if n.Load() != 1 {
		t.Fatalf("a fresh verdict was evaluated again (%d checks)", n.Load())
	}
	time.Sleep(120 * time.Millisecond) // as if the process had been stopped
	_ = r.verdict(ctx)
	if n.Load() != 2 {
		t.Fatalf("a stale verdict was trusted (%d checks)", n.Load())
	}
}
