package fanout

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/proto/viewpb"
)

const (
	half    = uint64(1) << 63 // 2^63
	quarter = uint64(1) << 62 // 2^62
)

// checkLeaks fails the test if goroutines started during it are still
// running once every other cleanup has run. Call it first.
func checkLeaks(t testing.TB) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("%d goroutines before the test, %d after:\n%s", before, n, buf)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testConfig is a config with fast pings for tests.
func testConfig(views ...*fakeView) Config {
	cfg := DefaultConfig()
	for _, v := range views {
		cfg.Static = append(cfg.Static, v.addr)
	}
	cfg.PingInterval = 50 * time.Millisecond
	cfg.ResolveInterval = 50 * time.Millisecond
	cfg.Logger = quietLogger()
	return cfg
}

// open starts a Fanout, closed at cleanup, and waits until it is ready.
func open(t testing.TB, cfg Config) *Fanout {
	t.Helper()
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.WaitReady(ctx); err != nil {
		t.Fatalf("%v; views: %v", err, f.Views())
	}
	return f
}

// partitioned starts n partitions × r replicas of each space over ds.
func partitioned(t testing.TB, ds []*viewpb.LookupFact, n, r int) (sp, po [][]*fakeView) {
	step := ^uint64(0)/uint64(n) + 1
	for _, space := range []viewpb.Space{viewpb.Space_HASH_SP, viewpb.Space_HASH_PO} {
		parts := make([][]*fakeView, n)
		for i := range n {
			start, end := uint64(i)*step, uint64(i+1)*step
			if i == n-1 {
				end = 0
			}
			for range r {
				parts[i] = append(parts[i], startFake(t, space, start, end, ds))
			}
		}
		if space == viewpb.Space_HASH_SP {
			sp = parts
		} else {
			po = parts
		}
	}
	return sp, po
}

func flat(parts ...[][]*fakeView) []*fakeView {
	var out []*fakeView
	for _, p := range parts {
		for _, vs := range p {
			out = append(out, vs...)
		}
	}
	return out
}

// reference is a view of the whole space, not served, for expected answers.
func reference(t testing.TB, space viewpb.Space, ds []*viewpb.LookupFact) *fakeView {
	return newFake(t, space, 0, 0, ds)
}

// sameFacts compares results fact by fact, order included.
func sameFacts(t testing.TB, what string, got, want [][]*viewpb.LookupFact) {
	t.Helper()
	if err := diffFacts(what, got, want); err != nil {
		t.Fatal(err)
	}
}

// diffFacts describes the first difference between results, or returns nil.
func diffFacts(what string, got, want [][]*viewpb.LookupFact) error {
	if len(got) != len(want) {
		return fmt.Errorf("%s: %d results, want %d", what, len(got), len(want))
	}
	for i := range want {
		if len(got[i]) != len(want[i]) {
			return fmt.Errorf("%s: lookup %d: %d facts, want %d:\ngot  %s\nwant %s", what, i, len(got[i]), len(want[i]), factList(got[i]), factList(want[i]))
		}
		for j := range want[i] {
			w := proto.Clone(want[i][j]).(*viewpb.LookupFact)
			w.Lookup = uint32(i)
			if !proto.Equal(got[i][j], w) {
				return fmt.Errorf("%s: lookup %d fact %d: got %v, want %v\ngot  %s\nwant %s", what, i, j, got[i][j], w, factList(got[i]), factList(want[i]))
			}
		}
	}
	return nil
}

func factList(fs []*viewpb.LookupFact) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "[%d %d %d %v] ", f.Id, f.Subject, f.Predicate, f.Object)
	}
	return b.String()
}

func countFacts(res [][]*viewpb.LookupFact) int {
	n := 0
	for _, r := range res {
		n += len(r)
	}
	return n
}

func sum(vs []*fakeView, get func(v *fakeView) int64) int64 {
	var n int64
	for _, v := range vs {
		n += get(v)
	}
	return n
}

func rpcs(v *fakeView) int64 { return v.rpcs.Load() }

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func viewOf(f *Fanout, addr string) View {
	for _, v := range f.Views() {
		if v.Addr == addr {
			return v
		}
	}
	return View{}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
