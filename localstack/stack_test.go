package localstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/apisvc/apiclient"
	"github.com/akutan/akutan/proto/apipb"
	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/proto/viewpb"
)

// stack runs the local stack's scripts against binaries built for the test,
// in a temporary state dir, on ports no other test uses: the same commands a
// user runs, as real processes.
type stack struct {
	t    testing.TB
	bin  string
	dir  string
	base int
	env  []string
}

func newStack(t testing.TB) *stack {
	if testing.Short() {
		t.Skip("starts processes")
	}
	bin := t.TempDir()
	out, err := exec.Command("go", "build", "-o", bin, "github.com/akutan/akutan/services/...").CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	s := &stack{t: t, bin: bin, dir: filepath.Join(t.TempDir(), "stack"), base: freeBase(t)}
	// Checkpoints are rare unless a test asks (it appends its own value,
	// which wins): the latency tests measure lookups, not checkpoints.
	s.env = append(os.Environ(), "AKUTAN_BIN="+bin, "AKUTAN_STACK_DIR="+s.dir, fmt.Sprintf("AKUTAN_BASE_PORT=%d", s.base),
		"AKUTAN_CHECKPOINT_INTERVAL=1h")
	t.Cleanup(func() {
		if t.Failed() {
			s.dumpLogs()
		}
		s.run("down.sh")
	})
	return s
}

// freeBase finds a base port whose ports (see lib.sh) are all free.
func freeBase(t testing.TB) int {
	for try := 0; try < 50; try++ {
		// Below the kernel's ephemeral range (32768 and up), so that no
		// client connection can take a stack port between the check and a
		// restart. A stack takes base to base+1999 (every server's HTTP
		// listener is at its gRPC port + 1000), so bases are 2000 apart,
		// and none overlaps the default stack's 17000-18999.
		base := 10000 + 2000*rand.N(11)
		if base == 16000 || base == 18000 {
			continue
		}
		ok := true
		for _, off := range []int{1, 2, 3, 101, 102, 103, 201, 202, 203, 301, 302, 303, 304, 401, 402, 403, 404, 501, 502, 503, 504, 900, 901, 999,
			1101, 1102, 1103, 1201, 1202, 1203, 1301, 1302, 1401, 1402, 1501, 1502} {
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

func (s *stack) mustRun(script string, args ...string) string {
	s.t.Helper()
	out, err := s.run(script, args...)
	if err != nil {
		s.t.Fatalf("%s %v: %v\n%s", script, args, err, out)
	}
	return out
}

func (s *stack) api(dc int) string { return fmt.Sprintf("127.0.0.1:%d", s.base+200+dc) }

// view returns the address of view n (1-based, lib.sh order: sp-p0, sp-p1,
// po-p0, po-p1) of a DC.
func (s *stack) view(dc, n int) string {
	return fmt.Sprintf("127.0.0.1:%d", s.base+300+(dc-1)*100+n)
}

// cli runs bin/akutan and returns its output and exit code.
func (s *stack) cli(stdin string, args ...string) (string, int) {
	cmd := exec.Command(filepath.Join(s.bin, "akutan"), args...)
	cmd.Env = append(s.env, "AWS_ACCESS_KEY_ID=akutan-local", "AWS_SECRET_ACCESS_KEY=akutan-local-secret")
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	return string(out), code
}

func (s *stack) pid(name string) int {
	b, err := os.ReadFile(filepath.Join(s.dir, "pids", name+".pid"))
	if err != nil {
		s.t.Fatalf("pid of %s: %v", name, err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func (s *stack) dumpLogs() {
	files, _ := filepath.Glob(filepath.Join(s.dir, "logs", "*.log"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if len(b) > 1500 {
			b = b[len(b)-1500:]
		}
		s.t.Logf("--- %s\n%s", filepath.Base(f), b)
	}
}

func apiClient(t testing.TB, addr string) apipb.AkutanClient {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return apipb.NewAkutanClient(cc)
}

func name(n string) *apipb.Node { return &apipb.Node{Ref: &apipb.Node_Name{Name: n}} }

// indexOf reads "... at index N" from CLI output.
func indexOf(t testing.TB, out string) uint64 {
	i := strings.LastIndex(out, "index ")
	if i < 0 {
		t.Fatalf("no index in %q", out)
	}
	n, err := strconv.ParseUint(strings.Fields(out[i+6:])[0], 10, 64)
	if err != nil {
		t.Fatalf("index in %q: %v", out, err)
	}
	return n
}

func lines(out string) []string {
	var ls []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(l, "#") && l != "" {
			ls = append(ls, l)
		}
	}
	sort.Strings(ls)
	return ls
}

// The whole user path on one stack, in order: the end-to-end tests.
func TestLocalStack(t *testing.T) {
	s := newStack(t)
	out := s.mustRun("up.sh")
	if !strings.Contains(out, "local stack is up") {
		t.Fatalf("up said:\n%s", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	t.Run("insert in dc1, read in dc2 and dc3, delete", func(t *testing.T) {
		out, code := s.cli("", "insert", "--api", s.api(1), "demo.facts")
		if code != 0 {
			t.Fatalf("insert: %s", out)
		}
		n := indexOf(t, out)
		var want []string
		for dc := 2; dc <= 3; dc++ {
			got, code := s.cli("", "lookup", "--api", s.api(dc), "--index", fmt.Sprint(n), "<alice>", "<knows>")
			if code != 0 {
				t.Fatalf("lookup in dc%d: %s", dc, got)
			}
			want = []string{"<alice> <knows> <bob>", "<alice> <knows> <carol>"}
			if l := lines(got); strings.Join(l, "|") != strings.Join(want, "|") {
				t.Fatalf("dc%d at %d: %q", dc, n, l)
			}
		}
		out, code = s.cli("<alice> <knows> <bob>\n", "delete", "--api", s.api(1))
		if code != 0 {
			t.Fatalf("delete: %s", out)
		}
		m := indexOf(t, out)
		old, _ := s.cli("", "lookup", "--api", s.api(3), "--index", fmt.Sprint(n), "<alice>", "<knows>")
		now, _ := s.cli("", "lookup", "--api", s.api(2), "--index", fmt.Sprint(m), "<alice>", "<knows>")
		if len(lines(old)) != 2 || strings.Join(lines(now), "|") != "<alice> <knows> <carol>" {
			t.Fatalf("after delete at %d: old %q, new %q", m, lines(old), lines(now))
		}
	})

	t.Run("bad input writes nothing", func(t *testing.T) {
		before := logLast(t, apiClient(t, s.api(1)))
		out, code := s.cli("<x> <y> <z>\n<x> <y> \"open\n", "insert", "--api", s.api(1))
		if code == 0 || !strings.Contains(out, "line 2, column 9: unterminated string (nothing was written)") {
			t.Fatalf("malformed file: exit %d: %s", code, out)
		}
		out, code = s.cli("<nobody> <knows> <bob>\n", "delete", "--api", s.api(1))
		if code == 0 || !strings.Contains(out, "<nobody>") || !strings.Contains(out, "NotFound") {
			t.Fatalf("delete of unknown name: exit %d: %s", code, out)
		}
		cl := apiClient(t, s.api(2))
		_, err := apiclient.LookupS(ctx, cl, &apipb.LookupSRequest{Subjects: []*apipb.Node{name("nobody")}})
		if status.Code(err) != codes.NotFound {
			t.Fatalf("lookup of unknown name: %v", err)
		}
		big := &apipb.WriteRequest{}
		text := strings.Repeat("x", 100000)
		for i := 0; i < 100; i++ {
			big.Inserts = append(big.Inserts, &apipb.Fact{Subject: name("big"), Predicate: name("blob"),
				Object: &apipb.Object{Value: &apipb.Object_String_{String_: nil}}})
			big.Inserts[i].Object = stringObj(fmt.Sprint(i) + text)
		}
		if _, err := cl.Write(ctx, big); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "limit") {
			t.Fatalf("oversize transaction: %v", err)
		}
		if _, err := cl.Write(ctx, &apipb.WriteRequest{Inserts: []*apipb.Fact{{Subject: name("a")}}}); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("fact without predicate: %v", err)
		}
		// A node ID from an index the log has not reached would stop every
		// view; it must be refused.
		future := &apipb.Node{Ref: &apipb.Node_Id{Id: 1_000_000 << 20}}
		if _, err := cl.Write(ctx, &apipb.WriteRequest{Inserts: []*apipb.Fact{{Subject: future, Predicate: name("p"), Object: stringObj("x")}}}); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "from index 1000000") {
			t.Fatalf("future node id: %v", err)
		}
		if after := logLast(t, apiClient(t, s.api(1))); after != before {
			t.Fatalf("bad input changed the log: %d -> %d", before, after)
		}
	})

	t.Run("a huge answer comes in pages and fails no other read", func(t *testing.T) {
		// The case: ten 7 MB facts on one subject once made it
		// unreadable and failed the next, unrelated lookup. Six take less
		// time and still need two pages of 16 MiB.
		cl := apiClient(t, s.api(1))
		const n, size = 6, 7 << 20
		for i := range n {
			obj := stringObj(fmt.Sprint(i) + strings.Repeat("h", size))
			if _, err := cl.Write(ctx, &apipb.WriteRequest{Inserts: []*apipb.Fact{{Subject: name("huge"), Predicate: name("blob"), Object: obj}}}); err != nil {
				t.Fatalf("write fact %d of 7 MB: %v", i, err)
			}
		}
		others := make(chan error, 1)
		stop := make(chan struct{})
		go func() {
			defer close(others)
			other := apiClient(t, s.api(2))
			for reads := 0; ; reads++ {
				select {
				case <-stop:
					if reads == 0 {
						others <- errors.New("no other read ran")
					}
					return
				default:
				}
				res, err := apiclient.LookupS(ctx, other, &apipb.LookupSRequest{Subjects: []*apipb.Node{name("alice")}})
				if err == nil && len(res.Facts) == 0 {
					err = errors.New("no facts")
				}
				if err != nil {
					others <- fmt.Errorf("unrelated lookup %d: %w", reads, err)
					return
				}
			}
		}()
		req := &apipb.LookupSRequest{Subjects: []*apipb.Node{name("huge")}}
		seen := map[uint64]bool{}
		var index uint64
		pages := 0
		for token := ""; ; pages++ {
			req.PageToken = token
			stream, err := cl.LookupS(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			token = ""
			for {
				msg, err := stream.Recv()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("page %d: %v", pages, err)
				}
				if len(msg.Facts) > 1 && proto.Size(msg) > 2<<20 {
					t.Errorf("page %d: a message of %d bytes holds %d facts; a large fact goes alone", pages, proto.Size(msg), len(msg.Facts))
				}
				if index != 0 && msg.Index != index {
					t.Fatalf("page %d read at %d, the first at %d", pages, msg.Index, index)
				}
				index = msg.Index
				for _, f := range msg.Facts {
					if seen[f.Id] {
						t.Fatalf("fact %d twice", f.Id)
					}
					seen[f.Id] = true
				}
				token = msg.NextPageToken
			}
			if token == "" {
				break
			}
		}
		close(stop)
		if err := <-others; err != nil {
			t.Fatal(err)
		}
		if len(seen) != n+1 || pages < 1 { // and the fact that names it
			t.Fatalf("%d facts in %d pages; want %d facts in several pages of at most 16 MiB", len(seen), pages+1, n+1)
		}
		// A page token is only good for its own request.
		_, err := apiclient.ReadPage(cl.LookupS(ctx, &apipb.LookupSRequest{Subjects: []*apipb.Node{name("alice")}, PageToken: "AQ"}))
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("malformed page token: %v", err)
		}
	})

	t.Run("100 concurrent creators of one name make one node", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for i := 0; i < 100; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				cl := apiClient(t, s.api(1+i%3))
				_, err := cl.Write(ctx, &apipb.WriteRequest{Inserts: []*apipb.Fact{{Subject: name("zed"), Predicate: name("n"), Object: &apipb.Object{Value: &apipb.Object_Int64{Int64: int64(i)}}}}})
				if err != nil {
					errs <- err
				}
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("write: %v", err)
		}
		cl := apiClient(t, s.api(2))
		res, err := apiclient.LookupPO(ctx, cl, &apipb.LookupPORequest{Lookups: []*apipb.PO{{Predicate: name("HasExternalID"), Object: stringObj("zed")}}})
		if err != nil || len(res.Facts) != 1 {
			t.Fatalf("nodes named zed: %v %v", res, err)
		}
		res, err = apiclient.LookupSP(ctx, cl, &apipb.LookupSPRequest{Lookups: []*apipb.SP{{Subject: name("zed"), Predicate: name("n")}}})
		if err != nil || len(res.Facts) != 100 {
			t.Fatalf("facts of zed: %d %v", len(res.GetFacts()), err)
		}
	})

	t.Run("SIGKILL a view: reads go on without errors", func(t *testing.T) {
		if err := syscall.Kill(s.pid("view-dc1-sp-p0-r0"), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cl := apiClient(t, s.api(1))
		for i := 0; i < 50; i++ {
			res, err := apiclient.LookupS(ctx, cl, &apipb.LookupSRequest{Subjects: []*apipb.Node{name("alice"), name("bob"), name("carol")}})
			if err != nil {
				t.Fatalf("lookup %d after the kill: %v", i, err)
			}
			if len(res.Facts) < 15 {
				t.Fatalf("lookup %d: %d facts", i, len(res.Facts))
			}
		}
		s.mustRun("up.sh") // restarts the killed view, which resumes from its data dir
	})

	t.Run("a slow replica barely moves p99", func(t *testing.T) {
		measure := func(warmup int) time.Duration {
			cl := apiClient(t, s.api(2))
			var lat []time.Duration
			for i := 0; i < warmup+300; i++ {
				t0 := time.Now()
				if _, err := apiclient.LookupSP(ctx, cl, &apipb.LookupSPRequest{Index: &apipb.IndexConstraint{Kind: &apipb.IndexConstraint_Recent{Recent: true}},
					Lookups: []*apipb.SP{{Subject: name("alice"), Predicate: name("age")}, {Subject: name("bob"), Predicate: name("age")}}}); err != nil {
					t.Fatal(err)
				}
				if i >= warmup {
					lat = append(lat, time.Since(t0))
				}
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			return lat[len(lat)*99/100]
		}
		healthy := measure(50)
		// Pause one HashSP view of dc2 (the measured API server's own) in
		// 500 ms stretches: calls to it answer up to 500 ms late. dc2 has
		// one view per range, so hedges go to the explicit fallback, the
		// other datacenters' views.
		pid := s.pid("view-dc2-sp-p1-r0")
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				syscall.Kill(pid, syscall.SIGSTOP)
				select {
				case <-stop:
					syscall.Kill(pid, syscall.SIGCONT)
					return
				case <-time.After(500 * time.Millisecond):
				}
				syscall.Kill(pid, syscall.SIGCONT)
				time.Sleep(5 * time.Millisecond)
			}
		}()
		// The warm-up lets the API servers notice the slow replica, as they
		// would in steady state; hedging covers the calls until then.
		slow := measure(50)
		close(stop)
		<-done
		t.Logf("lookup p99: healthy %v, one slow replica %v", healthy, slow)
		if slow > 2*healthy {
			t.Fatalf("p99 with a slow replica %v, healthy %v", slow, healthy)
		}
	})

	t.Run("stop dc1: dc2 and dc3 go on; dc1 catches up", func(t *testing.T) {
		s.mustRun("dc.sh", "down", "dc1")
		var last uint64
		for i := 0; i < 5; i++ {
			out, code := s.cli(fmt.Sprintf("<dcfail> <step> %d\n", i), "insert", "--api", s.api(2+i%2))
			if code != 0 {
				t.Fatalf("write with dc1 down: %s", out)
			}
			last = indexOf(t, out)
		}
		got, code := s.cli("", "lookup", "--api", s.api(3), "--at-least", fmt.Sprint(last), "<dcfail>", "<step>")
		if code != 0 || len(lines(got)) != 5 {
			t.Fatalf("read with dc1 down: %s", got)
		}
		t.Run("the CLI with no --api goes through dc2 or dc3", func(t *testing.T) { cliWithDC1Down(t, s) })
		s.mustRun("dc.sh", "up", "dc1")
		// dc1's views catch up and hold what dc2's hold.
		for n := 1; n <= 4; n++ {
			a, b := digest(t, s.view(1, n), last), digest(t, s.view(2, n), last)
			if a.Facts != b.Facts || a.Sum1 != b.Sum1 || a.Sum2 != b.Sum2 || a.Facts == 0 {
				t.Fatalf("view %d: dc1 digest %v, dc2 digest %v", n, a, b)
			}
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			got, code = s.cli("", "lookup", "--api", s.api(1), "--at-least", fmt.Sprint(last), "<dcfail>", "<step>")
			if code == 0 && len(lines(got)) == 5 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("read through dc1 after it came back: %s", got)
			}
		}
	})

	t.Run("status and down", func(t *testing.T) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			out, code := s.cli("", "status", "--api", s.api(3))
			if code == 0 && strings.Contains(out, "fully available: yes") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("status: exit %d\n%s", code, out)
			}
			time.Sleep(200 * time.Millisecond)
		}
		out := s.mustRun("down.sh")
		// With MinIO, the truncator and the pruner; and Prometheus where
		// .tools/bin has it (make up builds it, make test only promtool).
		want := 21
		if strings.Contains(out, "stopped prometheus") {
			want++
		}
		if strings.Count(out, "stopped") != want {
			t.Fatalf("down stopped %d processes, want %d:\n%s", strings.Count(out, "stopped"), want, out)
		}
		if _, code := s.cli("", "status", "--api", s.api(1)); code == 0 {
			t.Fatal("status answered after down")
		}
	})
}

func stringObj(s string) *apipb.Object {
	return &apipb.Object{Value: &apipb.Object_String_{String_: &entrypb.LangString{Text: s}}}
}

func logLast(t testing.TB, cl apipb.AkutanClient) uint64 {
	st, err := cl.Status(context.Background(), &apipb.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return st.Log.LastIndex
}

// digest asks one view for its digest at index, waiting for it.
func digest(t testing.TB, addr string, index uint64) *viewpb.DigestResponse {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		d, err := viewpb.NewViewClient(cc).Digest(ctx, &viewpb.DigestRequest{Index: index})
		if err == nil {
			return d
		}
		if ctx.Err() != nil {
			t.Fatalf("digest of %s at %d: %v", addr, index, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
