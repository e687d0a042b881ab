package localstack

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/akutan/akutan/apisvc/apiclient"
	"github.com/akutan/akutan/proto/apipb"
)

// clusterCmd runs `akutan cluster ARGS -f topo --ctl ctl.sh EXTRA...` and
// says how long it took.
func (s *stack) clusterCmd(topo string, extra []string, args ...string) (string, int, time.Duration) {
	start := time.Now()
	out, code := s.cli("", append(append(append([]string{"cluster"}, args...), "-f", topo, "--ctl", "ctl.sh"), extra...)...)
	return out, code, time.Since(start)
}

// clusterLoad is one client per DC (of the DCs given to startLoad): write a new fact, read it back at the
// latest index, over and over.
type clusterLoad struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	dcs    []int // the DC numbers it loads and verify checks

	mu       sync.Mutex
	cur      string
	acked    map[string]uint64 // subject -> index
	failures []string
	failed   map[string]map[int]int // phase -> dc -> count
	reads    int
	readLat  map[string][]time.Duration // phase -> successful reads' latencies, retries included
	retried  int
	reasons  map[string]int
}

func startLoad(t testing.TB, s *stack, dcs ...int) *clusterLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &clusterLoad{cancel: cancel, cur: "start", dcs: dcs, acked: map[string]uint64{}, failed: map[string]map[int]int{}, reasons: map[string]int{}, readLat: map[string][]time.Duration{}}
	for _, dc := range dcs {
		// The DC's API server, then its temporary one (infra/cluster's
		// LocalDriver: port + 50).
		clients := []apipb.AkutanClient{loadClient(t, s.api(dc)), loadClient(t, fmt.Sprintf("127.0.0.1:%d", s.base+250+dc))}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				subj := fmt.Sprintf("load-dc%d-%d", dc, i)
				var index uint64
				err := l.call(ctx, clients, func(ctx context.Context, c apipb.AkutanClient) error {
					resp, err := c.Write(ctx, &apipb.WriteRequest{Inserts: []*apipb.Fact{{Subject: name(subj), Predicate: name("load"),
						Object: &apipb.Object{Value: &apipb.Object_Int64{Int64: int64(i)}}}}})
					if err == nil {
						index = resp.Index
					}
					return err
				})
				if err == nil {
					l.mu.Lock()
					l.acked[subj] = index
					l.mu.Unlock()
					t0 := time.Now()
					err = l.call(ctx, clients, func(ctx context.Context, c apipb.AkutanClient) error {
						res, err := apiclient.LookupS(ctx, c, &apipb.LookupSRequest{Subjects: []*apipb.Node{name(subj)}})
						if err == nil && len(res.Facts) == 0 {
							return fmt.Errorf("read at latest after the write at %d: no fact", index)
						}
						return err
					})
					took := time.Since(t0)
					l.mu.Lock()
					l.reads++
					if err == nil {
						l.readLat[l.cur] = append(l.readLat[l.cur], took)
					}
					l.mu.Unlock()
				}
				if err != nil && ctx.Err() == nil {
					l.fail(dc, subj, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	return l
}

// loadClient is a connection that reconnects within a quarter second of
// a server's return (gRPC's default backoff grows to seconds while a
// server restarts).
func loadClient(t testing.TB, addr string) apipb.AkutanClient {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{MinConnectTimeout: time.Second,
			Backoff: backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 250 * time.Millisecond}}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return apipb.NewAkutanClient(cc)
}

// call sends one idempotent request (a write of a new fact, which may be
// repeated, or a read) to the DC's API servers in turn, for up to 4
// rounds with a growing pause, while it fails with a retryable error: the
// server was unavailable, or the log lost its leadership while committing
// (outcome unknown; repeating the insert is harmless). Each retried
// success is counted by the first error's reason.
func (l *clusterLoad) call(ctx context.Context, clients []apipb.AkutanClient, f func(context.Context, apipb.AkutanClient) error) error {
	var err, first error
	var round []string // the last round's errors, one per server
	pause := 100 * time.Millisecond
	for r := 0; r < 4; r++ {
		round = round[:0]
		for _, c := range clients {
			cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			err = f(cctx, c)
			if err != nil {
				round = append(round, err.Error())
			}
			cancel()
			if err == nil && first != nil {
				l.mu.Lock()
				l.retried++
				l.reasons[retryReason(first)]++
				l.mu.Unlock()
			}
			if err == nil || retryReason(err) == "" {
				return err
			}
			if first == nil {
				first = err
			}
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
		pause *= 2
	}
	// Every server's error, not only the temporary one's (which is
	// usually just not running).
	return fmt.Errorf("%w (first error %v; last round: %s)", err, first, strings.Join(round, " | "))
}

func retryReason(err error) string {
	switch {
	case status.Code(err) == codes.Unavailable:
		return "unavailable"
	case strings.Contains(err.Error(), "leadership lost"):
		return "leadership lost while committing"
	}
	return ""
}

func (l *clusterLoad) retryReasons() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for r, n := range l.reasons {
		out = append(out, fmt.Sprintf("%d %s", n, r))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func (l *clusterLoad) fail(dc int, subj string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failed[l.cur] == nil {
		l.failed[l.cur] = map[int]int{}
	}
	l.failed[l.cur][dc]++
	l.failures = append(l.failures, fmt.Sprintf("%s %s dc%d %s: %v", time.Now().Format("15:04:05.000"), l.cur, dc, subj, err))
}

func (l *clusterLoad) phase(p string) {
	l.mu.Lock()
	l.cur = p
	l.mu.Unlock()
}

// readQuantiles is the phase's read latency at the quantiles qs (0 when
// it read nothing) and the number of reads: what a client saw, a retry on
// the DC's temporary API server included.
func (l *clusterLoad) readQuantiles(phase string, qs ...float64) ([]time.Duration, int) {
	l.mu.Lock()
	lat := slices.Clone(l.readLat[phase])
	l.mu.Unlock()
	slices.Sort(lat)
	out := make([]time.Duration, len(qs))
	for i, q := range qs {
		if len(lat) > 0 {
			out[i] = lat[min(len(lat)-1, int(q*float64(len(lat))))]
		}
	}
	return out, len(lat)
}

// logLatency logs the phases' read p50 and p99 next to the phase before
// the first procedure ("start"): the figure issue 14 asks for.
func (l *clusterLoad) logLatency(t testing.TB) {
	l.mu.Lock()
	var phases []string
	for p := range l.readLat {
		phases = append(phases, p)
	}
	l.mu.Unlock()
	sort.Strings(phases)
	for _, p := range phases {
		q, n := l.readQuantiles(p, 0.5, 0.99)
		t.Logf("reads at the latest index during %s: p50 %.1f ms, p99 %.1f ms (%d reads)", p, ms(q[0]), ms(q[1]), n)
	}
}

func (l *clusterLoad) failedBy() map[string]map[int]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed
}

// stop ends the load and returns the acknowledged writes.
func (l *clusterLoad) stop() map[string]uint64 {
	l.cancel()
	l.wg.Wait()
	return l.acked
}

// verify ends the load and checks what every procedure test must hold:
// no request failed in a DC the phase does not take down (takesDown: phase
// -> DC numbers; every failure is logged), every acknowledged write is read
// in every DC at the latest index, and in every DC each space's views add
// up to the same digest (digests of disjoint ranges add up, whatever the
// partitioning; viewpb.DigestResponse).
func (l *clusterLoad) verify(t testing.TB, s *stack, takesDown map[string][]int) {
	t.Helper()
	l.phase("end")
	time.Sleep(2 * time.Second)
	acked := l.stop()
	for _, f := range l.failures {
		t.Logf("failed request: %s", f)
	}
	for phase, perDC := range l.failedBy() {
		for dc, n := range perDC {
			if !slices.Contains(takesDown[phase], dc) {
				t.Errorf("%s: %d failed request(s) in dc%d, which it does not take down", phase, n, dc)
			}
		}
	}
	t.Logf("load: %d writes acknowledged, %d reads, %d failed requests; %d requests succeeded only when retried (%s)",
		len(acked), l.reads, len(l.failures), l.retried, l.retryReasons())
	l.logLatency(t)

	var subjects []string
	for subj := range acked {
		subjects = append(subjects, subj)
	}
	sort.Strings(subjects)
	for _, dc := range l.dcs {
		cl := apiClient(t, s.api(dc))
		found := map[string]bool{}
		for i := 0; i < len(subjects); i += 200 {
			var nodes []*apipb.Node
			batch := subjects[i:min(i+200, len(subjects))]
			for _, subj := range batch {
				nodes = append(nodes, name(subj))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			res, err := apiclient.LookupS(ctx, cl, &apipb.LookupSRequest{Subjects: nodes})
			cancel()
			if err != nil {
				t.Fatalf("final read in dc%d of %d acknowledged writes: %v", dc, len(batch), err)
			}
			for _, f := range res.Facts {
				found[batch[f.Lookup]] = true
			}
		}
		for _, subj := range subjects {
			if !found[subj] {
				t.Errorf("dc%d lost the acknowledged write of %s (index %d)", dc, subj, acked[subj])
			}
		}
	}
	s.checkDigests(t, l.dcs)
}

// checkDigests sums, in each DC, the digests of each space's views as its
// API server lists them, at one index, and wants every sum equal: each
// space of each DC holds the same facts.
func (s *stack) checkDigests(t testing.TB, dcs []int) {
	t.Helper()
	n := logLast(t, apiClient(t, s.api(dcs[0])))
	type sum struct{ facts, sum1, sum2 uint64 }
	var want *sum
	wantFrom := ""
	for _, dc := range dcs {
		out, code := s.cli("", "status", "--api", s.api(dc), "--json")
		var st struct {
			DCs []struct {
				Views []struct {
					Address string `json:"address"`
					Space   string `json:"space"`
				} `json:"views"`
			} `json:"dcs"`
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.DCs) == 0 {
			t.Fatalf("status of dc%d: exit %d, %v\n%s", dc, code, err, out)
		}
		sums := map[string]*sum{}
		for _, v := range st.DCs[0].Views {
			d := digest(t, v.Address, n)
			if sums[v.Space] == nil {
				sums[v.Space] = &sum{}
			}
			sums[v.Space].facts += d.GetFacts()
			sums[v.Space].sum1 += d.GetSum1()
			sums[v.Space].sum2 += d.GetSum2()
		}
		for _, sp := range []string{"HashSP", "HashPO"} {
			got := sums[sp]
			if got == nil {
				t.Errorf("dc%d lists no %s view", dc, sp)
				continue
			}
			if want == nil {
				want, wantFrom = got, fmt.Sprintf("dc%d %s", dc, sp)
			} else if *got != *want {
				t.Errorf("dc%d %s at %d: digest %+v, %s %+v", dc, sp, n, *got, wantFrom, *want)
			}
		}
	}
	t.Logf("the digests of both spaces are equal in dcs %v at index %d (%d facts)", dcs, n, want.facts)
}
