package snapshot_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/akutan/akutan/snapshot"
)

// The instrumented store passes the conformance suite, counts what it
// does, and counts as errors only what failed: a missing object and a
// failed condition are answers.
func TestInstrumentStore(t *testing.T) {
	reg := prometheus.NewRegistry()
	open := func(t *testing.T) snapshot.Store {
		s, err := snapshot.NewDirStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return snapshot.InstrumentStore(s, reg)
	}
	for _, c := range conformance {
		if c.name == "LargeObject" {
			continue
		}
		t.Run(c.name, func(t *testing.T) { c.test(t, open(t)) })
	}

	reg = prometheus.NewRegistry()
	s := open(t)
	m := snapshot.NewStoreMetrics(reg) // the same metrics, already registered
	requests := func(op string) float64 {
		return testutil.ToFloat64(mustVec(t, reg, "akutan_bucket_requests_total", op))
	}
	failures := func(op string) float64 { return testutil.ToFloat64(mustVec(t, reg, "akutan_bucket_errors_total", op)) }
	ctx := context.Background()
	if _, err := s.Put(ctx, "a", bytes.NewReader([]byte("x")), 1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := snapshot.ReadAll(ctx, s, "a"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := snapshot.ReadAll(ctx, s, "missing"); !errors.Is(err, snapshot.ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := s.PutIf(ctx, "a", []byte("y"), snapshot.Condition{IfAbsent: true}); !errors.Is(err, snapshot.ErrPrecondition) {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.Instrument(s).Put(cctx, "b", bytes.NewReader([]byte("x")), 1); err == nil {
		t.Fatal("put with a cancelled context succeeded")
	}
	for op, want := range map[string][2]float64{
		snapshot.OpPut: {2, 1}, snapshot.OpGet: {2, 0}, snapshot.OpPutIf: {1, 0}, snapshot.OpHead: {0, 0},
	} {
		if got := [2]float64{requests(op), failures(op)}; got != want {
			t.Errorf("%s: requests, errors = %v, want %v", op, got, want)
		}
	}
	if n := testutil.CollectAndCount(reg, "akutan_bucket_request_duration_seconds"); n != 6 {
		t.Errorf("%d operations have a latency series, want all 6", n)
	}
}

// mustVec finds the series of name with op in reg.
func mustVec(t *testing.T, reg *prometheus.Registry, name, op string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == op {
				return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x", Help: "x"}, m.GetCounter().GetValue)
			}
		}
	}
	t.Fatalf("no %s{op=%q}", name, op)
	return nil
}
