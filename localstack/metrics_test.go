package localstack

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// requiredMetrics are the names docs/metrics.md promises, by process kind
// (the prefix of its name in the stack), that a running stack must export
// once it has taken a write and a lookup. A name matches a plain series or
// a histogram's _bucket, _count and _sum; a name ending in _ matches any
// metric with that prefix.
var requiredMetrics = map[string][]string{
	"log": {
		"akutan_build_info", "akutan_log_requests_total", "akutan_log_request_duration_seconds",
		"akutan_log_last_index", "akutan_log_first_index", "akutan_log_archived_index", "akutan_log_archive_lag_seconds",
		"akutan_log_append_duration_seconds", "akutan_log_leader_changes_total", "akutan_log_is_leader", "akutan_log_has_leader",
		"akutan_log_halted", "akutan_raft_", "akutan_bucket_requests_total", "akutan_bucket_errors_total",
		"akutan_bucket_request_duration_seconds",
	},
	"view": {
		"akutan_build_info", "akutan_view_requests_total", "akutan_view_request_duration_seconds",
		"akutan_view_applied_index", "akutan_view_lag_entries", "akutan_view_log_last_index", "akutan_view_serving",
		"akutan_view_checkpoint_index", "akutan_view_checkpoint_age_seconds", "akutan_view_checkpoints_total",
		"akutan_view_pebble_l0_files", "akutan_view_pebble_read_amplification", "akutan_view_pebble_compactions_total",
		"akutan_view_pebble_disk_bytes", "akutan_bucket_requests_total",
	},
	"api": {
		"akutan_build_info", "akutan_api_requests_total", "akutan_api_request_duration_seconds",
		"akutan_cluster_fully_available", "akutan_cluster_healthy",
		"akutan_api_write_duration_seconds", "akutan_api_append_duration_seconds",
		"akutan_api_view_lookup_duration_seconds", "akutan_api_hedges_total", "akutan_api_hedge_delay_seconds",
		"akutan_api_views_healthy",
	},
}

var httpAddrRE = regexp.MustCompile(`^--http-addr(?:=(.*))?$`)

// httpAddrOf is the --http-addr a running process of the stack was started
// with, read from its command line; "" when it has none.
func (s *stack) httpAddrOf(name string) string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", s.pid(name)))
	if err != nil {
		s.t.Fatalf("command line of %s: %v", name, err)
	}
	args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	for i, a := range args {
		if m := httpAddrRE.FindStringSubmatch(a); m != nil {
			if strings.Contains(a, "=") {
				return m[1]
			}
			if i+1 < len(args) {
				return args[i+1]
			}
		}
	}
	return ""
}

// hasMetric reports whether the exposition text has a series of name.
func hasMetric(text, name string) bool {
	pattern := `(?m)^` + regexp.QuoteMeta(name)
	if strings.HasSuffix(name, "_") {
		pattern += `\w`
	} else {
		pattern += `(_bucket|_count|_sum)?[{ ]`
	}
	return regexp.MustCompile(pattern).MatchString(text)
}

func scrape(addr string) (string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return string(b), err
}

// metricValue is the value of the first series of name in text.
func metricValue(text, name string) (float64, bool) {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(?:\{[^}]*\})? (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	return v, err == nil
}

// Every metric docs/metrics.md requires is scraped from every process of
// the running stack, on the --http-addr it was started with; Prometheus,
// when built, scrapes them all and has loaded the alert rules.
func TestStackMetrics(t *testing.T) {
	s := newStack(t)
	out := s.mustRun("up.sh")
	if !strings.Contains(out, "local stack is up") {
		t.Fatalf("up said:\n%s", out)
	}
	pidfiles, _ := filepath.Glob(filepath.Join(s.dir, "pids", "*.pid"))
	addrs := map[string]string{} // process name -> http address
	var without []string
	for _, f := range pidfiles {
		name := strings.TrimSuffix(filepath.Base(f), ".pid")
		kind, _, _ := strings.Cut(name, "-")
		if requiredMetrics[kind] == nil {
			continue
		}
		if addr := s.httpAddrOf(name); addr != "" && !strings.HasSuffix(addr, ":0") {
			addrs[name] = addr
		} else {
			without = append(without, name)
		}
	}
	if len(addrs) == 0 {
		t.Skipf("no process of the stack was started with --http-addr (localstack/lib.sh does not pass it yet): %v", without)
	}
	if len(without) > 0 {
		t.Errorf("started without a fixed --http-addr: %v", without)
	}

	// A write and a lookup, so that the request metrics have series.
	out, code := s.cli("", "insert", "--api", s.api(1), "demo.facts")
	if code != 0 {
		t.Fatalf("insert: %s", out)
	}
	n := indexOf(t, out)
	for dc := 1; dc <= 3; dc++ {
		if out, code := s.cli("", "lookup", "--api", s.api(dc), "--index", fmt.Sprint(n), "<alice>"); code != 0 {
			t.Fatalf("lookup in dc%d: %s", dc, out)
		}
	}

	names := make([]string, 0, len(addrs))
	for name := range addrs {
		names = append(names, name)
	}
	sort.Strings(names)
	texts := map[string]string{}
	deadline := time.Now().Add(60 * time.Second)
	for _, name := range names {
		kind, _, _ := strings.Cut(name, "-")
		var missing []string
		for {
			text, err := scrape(addrs[name])
			missing = missing[:0]
			if err != nil {
				missing = append(missing, err.Error())
			} else {
				for _, m := range requiredMetrics[kind] {
					if !hasMetric(text, m) {
						missing = append(missing, m)
					}
				}
				if kind == "view" {
					if v, ok := metricValue(text, "akutan_view_applied_index"); !ok || v < float64(n) {
						missing = append(missing, fmt.Sprintf("akutan_view_applied_index >= %d (is %v)", n, v))
					}
				}
			}
			texts[name] = text
			if len(missing) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if len(missing) > 0 {
			t.Errorf("%s at %s lacks %s", name, addrs[name], strings.Join(missing, ", "))
		}
	}
	leaders := 0.0
	for name, text := range texts {
		if strings.HasPrefix(name, "log-") {
			v, _ := metricValue(text, "akutan_log_is_leader")
			leaders += v
		}
	}
	if leaders != 1 {
		t.Errorf("%v log replicas say they lead", leaders)
	}

	if _, err := os.Stat(filepath.Join(s.dir, "pids", "prometheus.pid")); err != nil {
		t.Logf("Prometheus is not running (make tools-prometheus builds it); not checking its targets")
		return
	}
	prom := fmt.Sprintf("http://127.0.0.1:%d", s.base+990)
	get := func(path string) string {
		resp, err := http.Get(prom + path)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	var targets string
	for deadline := time.Now().Add(60 * time.Second); ; {
		targets = get("/api/v1/targets?state=active")
		up := strings.Count(targets, `"health":"up"`)
		if up == len(addrs)+1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	if up := strings.Count(targets, `"health":"up"`); up != len(addrs)+1 {
		t.Errorf("Prometheus has %d targets up, want %d: %s", up, len(addrs)+1, targets)
	}
	if rules := get("/api/v1/rules"); !strings.Contains(rules, "AkutanLogNoLeader") {
		t.Errorf("Prometheus has not loaded the alert rules: %s", rules)
	}
}
