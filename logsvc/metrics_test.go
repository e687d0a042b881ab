package logsvc

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/akutan/akutan/logsvc/logclient"
	"github.com/akutan/akutan/proto/logpb"
)

// gaugeValue reads one unlabelled gauge or counter from reg.
func gaugeValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if g := m.GetGauge(); g != nil {
			return g.GetValue()
		}
		return m.GetCounter().GetValue()
	}
	t.Fatalf("metric %s is not registered", name)
	return 0
}

// Three replicas in one process register on their own registries; both see
// the index move, the archive catch up and the leader; Raft's go-metrics
// reach both through the one process-wide bridge.
func TestMetrics(t *testing.T) {
	store := newDirStore(t)
	regs := []*prometheus.Registry{prometheus.NewRegistry(), prometheus.NewRegistry(), prometheus.NewRegistry()}
	c := newCluster(t, 3, func(i int, cfg *Config) {
		cfg.Registerer = regs[i]
		cfg.ArchiveStore = store
		cfg.ArchiveInterval = 20 * time.Millisecond
		cfg.Segments = SegmentConfig{SegmentBytes: 8 << 10, SegmentAge: time.Hour}
	})
	leader := c.waitLeader()
	var lreg *prometheus.Registry
	for i, s := range c.servers {
		if s == leader {
			lreg = regs[i]
		}
	}
	for _, name := range []string{"akutan_log_last_index", "akutan_log_archived_index", "akutan_log_archive_lag_seconds",
		"akutan_log_append_duration_seconds", "akutan_log_leader_changes_total", "akutan_log_is_leader", "akutan_log_has_leader"} {
		if n, err := testutil.GatherAndCount(lreg, name); err != nil || n == 0 {
			t.Errorf("%s: %d series, %v", name, n, err)
		}
	}
	if got := gaugeValue(t, lreg, "akutan_log_is_leader"); got != 1 {
		t.Errorf("is_leader on the leader = %v", got)
	}
	if got := gaugeValue(t, lreg, "akutan_log_leader_changes_total"); got < 1 {
		t.Errorf("leader changes = %v, want at least 1", got)
	}
	before := gaugeValue(t, lreg, "akutan_log_last_index")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	app := logclient.NewAppender(c.addrs(), logclient.DefaultAppenderConfig())
	defer app.Close()
	for i := 0; i < 10; i++ {
		if _, err := app.AppendBatch(ctx, [][]byte{pingEntry(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	c.waitApplied(uint64(before) + 10)
	for _, reg := range regs {
		if got := gaugeValue(t, reg, "akutan_log_last_index"); got != before+10 {
			t.Errorf("last index = %v, want %v", got, before+10)
		}
	}
	// The segments are large and never old enough: the entries wait.
	time.Sleep(50 * time.Millisecond)
	if got := gaugeValue(t, lreg, "akutan_log_archive_lag_seconds"); got <= 0 {
		t.Errorf("archive lag with unarchived entries = %v, want > 0", got)
	}
	if text := gatherText(t, lreg); !regexp.MustCompile(`akutan_log_append_duration_seconds_count\{result="ok"\} [1-9]`).MatchString(text) {
		t.Error("no successful append counted")
	}

	resp, err := mustClient(t, leader.GRPCAddr()).ArchiveNow(ctx, &logpb.ArchiveNowRequest{})
	if err != nil {
		t.Fatal(err)
	}
	c.waitApplied(resp.ArchivedThrough)
	for i, reg := range regs {
		deadline := time.Now().Add(5 * time.Second)
		for gaugeValue(t, reg, "akutan_log_archived_index") != float64(resp.ArchivedThrough) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if got := gaugeValue(t, reg, "akutan_log_archived_index"); got != float64(resp.ArchivedThrough) {
			t.Errorf("replica %d: archived index = %v, want %d", i, got, resp.ArchivedThrough)
		}
		if got := gaugeValue(t, reg, "akutan_log_archive_lag_seconds"); got != 0 {
			t.Errorf("replica %d: archive lag with everything archived = %v", i, got)
		}
	}
	text := gatherText(t, lreg)
	for _, want := range []string{`akutan_bucket_requests_total{op="put"}`, "akutan_raft_"} {
		if !strings.Contains(text, want) {
			t.Errorf("the leader's metrics lack %s", want)
		}
	}
}

// gatherText is reg's exposition in the text format.
func gatherText(t testing.TB, reg *prometheus.Registry) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

func TestCommitClock(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var c commitClock
	c.start(10, t0) // 1..10 existed at start
	if got := c.age(10, 10, t0.Add(time.Hour)); got != 0 {
		t.Fatalf("all archived: %v", got)
	}
	if got := c.age(5, 10, t0.Add(time.Minute)); got != time.Minute {
		t.Fatalf("entries from before the start: %v", got)
	}
	c.note(20, 10, t0.Add(10*time.Second))
	c.note(25, 10, t0.Add(10*time.Second+time.Millisecond)) // merges
	c.note(30, 10, t0.Add(20*time.Second))
	if got := c.age(10, 30, t0.Add(30*time.Second)); got != 20*time.Second {
		t.Fatalf("oldest unarchived at 11: %v", got)
	}
	if got := c.age(25, 30, t0.Add(30*time.Second)); got != 10*time.Second {
		t.Fatalf("oldest unarchived at 26: %v", got)
	}
	for i := 0; i < 3*commitClockMax; i++ {
		c.note(uint64(31+i), 25, t0.Add(time.Duration(21+2*i)*time.Second))
	}
	if len(c.marks) > commitClockMax {
		t.Fatalf("%d marks kept", len(c.marks))
	}
	if got := c.age(25, uint64(31+3*commitClockMax), t0.Add(30*time.Second)); got != 10*time.Second {
		t.Fatalf("after merging: %v", got)
	}
}
