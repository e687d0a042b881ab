package localstack

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/akutan/akutan/proto/apipb"
)

// httpOf is a server's HTTP listener in the stack: its gRPC port + 1000
// (lib.sh).
func httpOf(grpcAddr string) string {
	var port int
	fmt.Sscanf(grpcAddr[strings.LastIndexByte(grpcAddr, ':')+1:], "%d", &port)
	return fmt.Sprintf("127.0.0.1:%d", port+1000)
}

// get fetches http://addr/path with a timeout.
func get(addr, path string, timeout time.Duration) (int, string, error) {
	c := http.Client{Timeout: timeout}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// TestLifecycle runs the stack with AKUTAN_MAX_LAG=20 in its environment
// (so every view and API server has --max-lag 20 without a flag) and checks
// the shared server lifecycle on real processes: every server answers
// /healthz, /readyz and /metrics; and a view SIGSTOPped while more than
// max-lag entries are written stops answering its probes, then reports
// NOT_SERVING (gRPC health) and 503 (/readyz) after SIGCONT until it has
// caught up, and SERVING and 200 again once it has.
func TestLifecycle(t *testing.T) {
	s := newStack(t)
	s.env = append(s.env, "AKUTAN_PARTITIONS=1", "AKUTAN_MAX_LAG=20")
	s.mustRun("up.sh")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	logHTTP := func(dc int) string { return fmt.Sprintf("127.0.0.1:%d", s.base+1100+dc) }
	view := s.view(1, 1) // view-dc1-sp-p0-r0
	viewHTTP := httpOf(view)
	waitReady := func(addr string) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			code, body, err := get(addr, "/readyz", 2*time.Second)
			if code == 200 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s/readyz: %d %q %v", addr, code, body, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	t.Run("every server serves /healthz, /readyz and /metrics", func(t *testing.T) {
		for dc := 1; dc <= 3; dc++ {
			for _, srv := range []struct{ role, addr string }{
				{"log", logHTTP(dc)}, {"api", httpOf(s.api(dc))}, {"view", httpOf(s.view(dc, 1))}, {"view", httpOf(s.view(dc, 2))},
			} {
				if code, body, err := get(srv.addr, "/healthz", 5*time.Second); code != 200 {
					t.Fatalf("%s %s/healthz: %d %q %v", srv.role, srv.addr, code, body, err)
				}
				waitReady(srv.addr)
				_, metrics, err := get(srv.addr, "/metrics", 5*time.Second)
				if err != nil || !strings.Contains(metrics, `akutan_build_info{commit=`) || !strings.Contains(metrics, fmt.Sprintf(`role="%s"`, srv.role)) ||
					!strings.Contains(metrics, fmt.Sprintf("akutan_%s_requests_total{", srv.role)) {
					t.Fatalf("%s %s/metrics: %v\n%.3000s", srv.role, srv.addr, err, metrics)
				}
				if srv.role == "api" && !strings.Contains(metrics, fmt.Sprintf(`akutan_cluster_fully_available{dc="dc%d"} 1`, dc)) {
					t.Fatalf("api of dc%d does not judge its cluster fully available:\n%s", dc, grepLines(metrics, "akutan_cluster"))
				}
				if code, _, _ := get(srv.addr, "/debug/pprof/", 5*time.Second); code != 404 {
					t.Fatalf("%s serves pprof without --pprof: %d", srv.addr, code)
				}
			}
		}
	})

	t.Run("a stopped view is not ready until it catches up", func(t *testing.T) {
		cc, err := grpc.NewClient(view, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		hc := healthpb.NewHealthClient(cc)
		waitReady(viewHTTP)
		if r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health of a ready view: %v %v", r, err)
		}
		// The Watch stream sees every change the readiness loop makes.
		wctx, wcancel := context.WithCancel(ctx)
		defer wcancel()
		watch, err := hc.Watch(wctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		statuses := make(chan healthpb.HealthCheckResponse_ServingStatus, 100)
		go func() {
			for {
				r, err := watch.Recv()
				if err != nil {
					close(statuses)
					return
				}
				statuses <- r.Status
			}
		}()
		if st := <-statuses; st != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("first watched status %v", st)
		}

		// Writes by ID through dc2's API, which needs no dc1 view.
		cl := apiClient(t, s.api(2))
		created, err := cl.Write(ctx, &apipb.WriteRequest{Inserts: []*apipb.Fact{{Subject: name("lag-s"), Predicate: name("lag-p"), Object: &apipb.Object{Value: &apipb.Object_Int64{Int64: -1}}}}})
		if err != nil {
			t.Fatal(err)
		}
		subj, pred := created.Created["lag-s"], created.Created["lag-p"]
		pid := s.pid("view-dc1-sp-p0-r0")
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		stopped := true
		defer func() {
			if stopped {
				_ = syscall.Kill(pid, syscall.SIGCONT)
			}
		}()
		before := logLast(t, cl)
		var wg sync.WaitGroup
		var failed atomic.Value
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < 40; i++ {
					req := &apipb.WriteRequest{Inserts: []*apipb.Fact{{Subject: &apipb.Node{Ref: &apipb.Node_Id{Id: subj}},
						Predicate: &apipb.Node{Ref: &apipb.Node_Id{Id: pred}}, Object: &apipb.Object{Value: &apipb.Object_Int64{Int64: int64(w*1000 + i)}}}}}
					if _, err := cl.Write(ctx, req); err != nil {
						failed.Store(err)
						return
					}
				}
			}(w)
		}
		wg.Wait()
		if err, _ := failed.Load().(error); err != nil {
			t.Fatalf("write while the view is stopped: %v", err)
		}
		if last := logLast(t, cl); last < before+300 {
			t.Fatalf("log went from %d to %d only", before, last)
		}
		// A stopped process answers nothing: its probes fail by timeout.
		if code, _, err := get(viewHTTP, "/readyz", time.Second); err == nil {
			t.Fatalf("/readyz of a stopped view answered %d", code)
		}
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		if _, err := hc.Check(cctx, &healthpb.HealthCheckRequest{}); err == nil {
			t.Fatal("health of a stopped view answered")
		}
		ccancel()

		// SIGCONT: poll /readyz while watching the health status.
		var saw503, saw200 atomic.Bool
		pollDone := make(chan struct{})
		pollStop := make(chan struct{})
		go func() {
			defer close(pollDone)
			for {
				select {
				case <-pollStop:
					return
				default:
				}
				code, _, _ := get(viewHTTP, "/readyz", 5*time.Second)
				switch {
				case code == 503:
					saw503.Store(true)
				case code == 200 && saw503.Load():
					saw200.Store(true)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		stopped = false
		sawNotServing := false
		deadline := time.After(90 * time.Second)
	watching:
		for {
			select {
			case st, ok := <-statuses:
				if !ok {
					t.Fatal("health watch ended")
				}
				if st == healthpb.HealthCheckResponse_NOT_SERVING {
					sawNotServing = true
				} else if st == healthpb.HealthCheckResponse_SERVING && sawNotServing {
					break watching
				}
			case <-deadline:
				t.Fatalf("after SIGCONT: NOT_SERVING seen %v, SERVING again not seen", sawNotServing)
			}
		}
		waitReady(viewHTTP)
		close(pollStop)
		<-pollDone
		if !saw503.Load() {
			t.Error("/readyz never answered 503 while the view was catching up")
		}
		if r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health after catching up: %v %v", r, err)
		}
	})
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
