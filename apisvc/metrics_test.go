package apisvc

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/akutan/akutan/proto/apipb"
)

// A write is timed by result, whatever happens to it.
func TestWriteMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	met, err := newMetrics(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{cfg: DefaultConfig(), met: met}
	if _, err := s.Write(context.Background(), &apipb.WriteRequest{}); err == nil {
		t.Fatal("an empty write succeeded")
	}
	if n, err := testutil.GatherAndCount(reg, "akutan_api_write_duration_seconds"); err != nil || n != 2 {
		t.Fatalf("write latency series: %d, %v", n, err)
	}
	if got := histCount(t, reg, "akutan_api_write_duration_seconds", "error"); got != 1 {
		t.Errorf("failed writes timed: %d", got)
	}
	if n, err := testutil.GatherAndCount(reg, "akutan_api_append_duration_seconds"); err != nil || n != 4 {
		t.Errorf("append latency series: %d, %v", n, err)
	}
	if _, err := newMetrics(reg, nil); err == nil {
		t.Error("registering twice on one registry succeeded")
	}
	if _, err := newMetrics(nil, nil); err != nil {
		t.Errorf("a private registry: %v", err)
	}
}

// histCount is the sample count of name's series whose result is result.
func histCount(t *testing.T, reg *prometheus.Registry, name, result string) uint64 {
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
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}
