package viewsvc

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// metricValue reads the one series of name in reg.
func metricValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// The applied index, the lag and the checkpoint metrics follow the view;
// a view reopened on the same registry replaces the closed one's metrics.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := testConfig(t, SpaceSP, FullRange)
	cfg.Registerer = reg
	cfg.Store = dirStore(t)
	cfg.Cluster = "dc1"
	log := NewMemLog()
	for i := 0; i < 5; i++ {
		log.Append(newTx(1).insert(newRef(1), newRef(1), intObj(int64(i))).bytes())
	}
	v := openView(t, cfg)
	for _, name := range []string{"akutan_view_applied_index", "akutan_view_lag_entries", "akutan_view_checkpoint_index",
		"akutan_view_checkpoint_age_seconds", "akutan_view_pebble_l0_files", "akutan_view_pebble_read_amplification",
		"akutan_view_pebble_compactions_total", "akutan_view_pebble_disk_bytes"} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != 1 {
			t.Errorf("%s: %d series, %v", name, n, err)
		}
	}
	if got := metricValue(t, reg, "akutan_view_applied_index"); got != 0 {
		t.Fatalf("applied index before Run = %v", got)
	}
	r := start(t, v, log)
	waitApplied(t, v, 5)
	if got := metricValue(t, reg, "akutan_view_applied_index"); got != 5 {
		t.Errorf("applied index = %v, want 5", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for metricValue(t, reg, "akutan_view_log_last_index") != 5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := metricValue(t, reg, "akutan_view_lag_entries"); got != 0 {
		t.Errorf("lag when caught up = %v", got)
	}
	if got := metricValue(t, reg, "akutan_view_pebble_disk_bytes"); got <= 0 {
		t.Errorf("disk bytes = %v", got)
	}
	r.stop()
	// The log moves on while the view is stopped: it knows, and lags.
	log.Append(pingEntry(1), pingEntry(1), pingEntry(1))
	v.met.logLast.Store(8)
	if got := metricValue(t, reg, "akutan_view_lag_entries"); got != 3 {
		t.Errorf("lag 3 entries behind = %v", got)
	}

	if got := metricValue(t, reg, "akutan_view_checkpoint_index"); got != 0 {
		t.Errorf("checkpoint index before any = %v", got)
	}
	if _, err := v.CheckpointNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := metricValue(t, reg, "akutan_view_checkpoint_index"); got != 5 {
		t.Errorf("checkpoint index = %v, want 5", got)
	}
	if got := metricValue(t, reg, "akutan_view_checkpoint_age_seconds"); got < 0 || got > 60 {
		t.Errorf("checkpoint age = %v", got)
	}
	if got := testutil.ToFloat64(v.met.checkpoints.WithLabelValues("ok")); got != 1 {
		t.Errorf("checkpoints = %v", got)
	}
	if n, _ := testutil.GatherAndCount(reg, "akutan_bucket_requests_total"); n == 0 {
		t.Error("checkpoints did not go through the bucket metrics")
	}

	// Reopened: the new view's metrics, and the age of the checkpoint
	// written before, found in the catalog.
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	v2 := openView(t, cfg)
	if got := metricValue(t, reg, "akutan_view_applied_index"); got != 5 {
		t.Errorf("reopened: applied index = %v, want 5", got)
	}
	start(t, v2, log)
	waitApplied(t, v2, 8)
	deadline = time.Now().Add(5 * time.Second)
	for v2.met.checkpointAge(time.Now()) > 30*time.Second && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	v2.met.mu.Lock()
	at := v2.met.checkpointAt
	v2.met.mu.Unlock()
	if at.IsZero() {
		t.Error("the reopened view did not find its checkpoint's time")
	}
}
