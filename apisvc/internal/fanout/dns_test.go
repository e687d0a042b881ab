package fanout

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/akutan/akutan/proto/viewpb"
)

// fakeResolver answers LookupHost from a map the test changes.
type fakeResolver struct {
	mu    sync.Mutex
	hosts map[string][]string
	err   error
	calls int
}

func (r *fakeResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.err != nil {
		return nil, r.err
	}
	if hs, ok := r.hosts[host]; ok {
		return slices.Clone(hs), nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (r *fakeResolver) set(host string, ips []string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hosts[host], r.err = ips, err
}

func (r *fakeResolver) callCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// startFakeAt serves a fake view on ip, on the port given or a free one.
func startFakeAt(t *testing.T, ip string, port int, space viewpb.Space, ds []*viewpb.LookupFact) *fakeView {
	t.Helper()
	v := newFake(t, space, 0, 0, ds)
	v.serve(net.JoinHostPort(ip, strconv.Itoa(port)))
	return v
}

func addrSet(f *Fanout) []string {
	var out []string
	for _, v := range f.Views() {
		out = append(out, v.Addr)
	}
	return out
}

// TestDNSDiscovery checks that views are found through a DNS name, and that
// addresses added and removed are picked up at the next resolution. The
// views listen on distinct loopback addresses with one port, like the pods
// of a Kubernetes headless service.
func TestDNSDiscovery(t *testing.T) {
	checkLeaks(t)
	ds := makeFacts(12)
	first := startFakeAt(t, "127.0.0.2", 0, viewpb.Space_HASH_SP, ds)
	_, portStr, _ := net.SplitHostPort(first.addr)
	port, _ := strconv.Atoi(portStr)
	second := startFakeAt(t, "127.0.0.3", port, viewpb.Space_HASH_SP, ds)
	third := startFakeAt(t, "127.0.0.4", port, viewpb.Space_HASH_SP, ds)
	po := startFake(t, viewpb.Space_HASH_PO, 0, 0, ds)

	res := &fakeResolver{hosts: map[string][]string{"views.test": {"127.0.0.2", "127.0.0.3"}}}
	cfg := testConfig(po)
	cfg.DNS = []string{"views.test:" + portStr, "missing.test:1"}
	cfg.Resolver = res
	f := open(t, cfg)
	ctx := ctxT(t)
	if got, want := addrSet(f), []string{first.addr, po.addr, second.addr}; !slices.Equal(got, sortedCopy(want)) {
		t.Fatalf("views %v, want %v", got, want)
	}
	lookups := spLookups(newRand(17), ds, 50)
	used := func(v *fakeView) bool {
		before := v.rpcs.Load()
		for range 30 {
			if _, err := f.LookupSP(ctx, 1, lookups); err != nil {
				t.Fatal(err)
			}
		}
		return v.rpcs.Load() > before
	}

	// Added.
	res.set("views.test", []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}, nil)
	waitFor(t, "the third view", func() bool { return viewOf(f, third.addr).Healthy })
	if !used(third) {
		t.Error("the added view is not used")
	}

	// A failed resolution keeps what it had.
	calls := res.callCount()
	res.set("views.test", nil, errors.New("SERVFAIL"))
	waitFor(t, "two more resolutions", func() bool { return res.callCount() >= calls+4 })
	if n := len(f.Views()); n != 4 {
		t.Errorf("after a failed resolution: %v", addrSet(f))
	}

	// Removed.
	res.set("views.test", []string{"127.0.0.3", "127.0.0.4"}, nil)
	waitFor(t, "the first view to go", func() bool { return viewOf(f, first.addr).Addr == "" })
	before := first.rpcs.Load()
	for range 30 {
		if _, err := f.LookupSP(ctx, 1, lookups); err != nil {
			t.Fatal(err)
		}
	}
	if first.rpcs.Load() != before {
		t.Error("a removed view is still used")
	}
	if got, want := addrSet(f), []string{po.addr, second.addr, third.addr}; !slices.Equal(got, sortedCopy(want)) {
		t.Errorf("views %v, want %v", got, want)
	}
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed+1)) }

// TestNewWaitsForPings checks that New returns with the first pings done, so
// a Fanout can serve at once, and that it does not hang on a dead address.
func TestNewWaitsForPings(t *testing.T) {
	checkLeaks(t)
	sp := startFake(t, viewpb.Space_HASH_SP, 0, 0, nil)
	po := startFake(t, viewpb.Space_HASH_PO, 0, 0, nil)
	dead := startFake(t, viewpb.Space_HASH_SP, 0, 0, nil)
	dead.stop()
	cfg := testConfig(sp, po, dead)
	cfg.PingInterval = time.Hour
	start := time.Now()
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("New took %v", took)
	}
	if !viewOf(f, sp.addr).Healthy || !viewOf(f, po.addr).Healthy || viewOf(f, dead.addr).Healthy {
		t.Errorf("views after New: %+v", f.Views())
	}
	if _, err := f.LookupSP(ctxT(t), 1, []*viewpb.SPLookup{{Subject: 1, Predicate: 2}}); err != nil {
		t.Error(err)
	}
}
