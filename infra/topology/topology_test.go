package topology

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/akutan/akutan/model"
)

func mustValid(t *testing.T, data string) *Topology {
	t.Helper()
	top, err := Parse([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := top.Validate(); err != nil {
		t.Fatal(err)
	}
	return top
}

// line formats a server as `akutan topology servers` does, roughly.
func line(s Server) string {
	out := fmt.Sprintf("%s %s %s %s", s.Role, s.DC, s.Name, s.Addr)
	if s.Raft != "" {
		out += " raft=" + s.Raft
	}
	if s.Role == RoleView {
		out += fmt.Sprintf(" %s %v", s.Space, s.Range)
	}
	return out
}

// same fails unless got and want hold the same lines.
func same(t *testing.T, what string, got, want []string) {
	t.Helper()
	if g, w := strings.Join(got, "\n"), strings.Join(want, "\n"); g != w {
		t.Fatalf("%s:\n%s\nwant:\n%s", what, g, w)
	}
}

// TestLocalStack checks that localstack/topology.yaml is the layout lib.sh
// always had: the same names, ports and ranges.
func TestLocalStack(t *testing.T) {
	top, err := Load(filepath.Join("..", "..", "localstack", "topology.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := top.Validate(); err != nil {
		t.Fatal(err)
	}
	var want []string
	half := model.HashRange{End: 1 << 63}
	upper := model.HashRange{Start: 1 << 63}
	for d := 1; d <= 3; d++ {
		dc := fmt.Sprintf("dc%d", d)
		want = append(want, fmt.Sprintf("log %s log-%s 127.0.0.1:%d raft=127.0.0.1:%d", dc, dc, 17100+d, 17000+d))
		n := 0
		for _, sp := range []model.Space{model.SpaceSP, model.SpacePO} {
			for p, r := range []model.HashRange{half, upper} {
				n++
				want = append(want, fmt.Sprintf("view %s view-%s-%s-p%d-r0 127.0.0.1:%d %s %v", dc, dc, shortSpace(sp), p, 17300+(d-1)*100+n, sp, r))
			}
		}
		want = append(want, fmt.Sprintf("api %s api-%s 127.0.0.1:%d", dc, dc, 17200+d))
	}
	var got []string
	for _, s := range top.Servers() {
		got = append(got, line(s))
	}
	same(t, "servers", got, want)

	// Another base moves every port, as AKUTAN_BASE_PORT does.
	top.Ports.Base = 23000
	if err := top.Validate(); err != nil {
		t.Fatal(err)
	}
	if s := top.Servers()[1]; s.Name != "view-dc1-sp-p0-r0" || s.Addr != "127.0.0.1:23301" {
		t.Fatalf("with base 23000: %s", line(s))
	}

	// AKUTAN_PARTITIONS=1 AKUTAN_REPLICAS=2.
	top.SetEven(1, 2)
	if err := top.Validate(); err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, s := range top.Servers() {
		if s.DC == "dc2" && s.Role == RoleView {
			got = append(got, line(s))
		}
	}
	want = []string{
		"view dc2 view-dc2-sp-p0-r0 127.0.0.1:23401 HashSP [0x0000000000000000, 2^64)",
		"view dc2 view-dc2-sp-p0-r1 127.0.0.1:23402 HashSP [0x0000000000000000, 2^64)",
		"view dc2 view-dc2-po-p0-r0 127.0.0.1:23403 HashPO [0x0000000000000000, 2^64)",
		"view dc2 view-dc2-po-p0-r1 127.0.0.1:23404 HashPO [0x0000000000000000, 2^64)",
	}
	same(t, "dc2's views with SetEven(1, 2)", got, want)
}

// TestExample checks the example of the package documentation.
func TestExample(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	top := mustValid(t, string(data))
	var got []string
	for _, s := range top.Servers() {
		if s.DC == "dc2" {
			got = append(got, line(s))
		}
	}
	want := []string{
		"log dc2 log-dc2 10.0.2.4:7001 raft=10.0.2.4:7000",
		"view dc2 view-dc2-sp-p0-r0 127.0.0.1:17401 HashSP [0x0000000000000000, 0x8000000000000000)",
		"view dc2 view-dc2-sp-p0-r1 127.0.0.1:17402 HashSP [0x0000000000000000, 0x8000000000000000)",
		"view dc2 view-dc2-sp-p0-r2 127.0.0.1:17403 HashSP [0x0000000000000000, 0x8000000000000000)",
		"view dc2 view-dc2-sp-p1-r0 10.0.2.6:7002 HashSP [0x8000000000000000, 2^64)",
		"view dc2 view-dc2-sp-p1-r1 10.0.2.7:7002 HashSP [0x8000000000000000, 2^64)",
		"view dc2 view-dc2-sp-p1-r2 10.0.2.8:7002 HashSP [0x8000000000000000, 2^64)",
		"view dc2 view-dc2-po-old-r0 127.0.0.1:17407 HashPO [0x0000000000000000, 2^64)",
		"view dc2 view-dc2-po-p1-r0 127.0.0.1:17408 HashPO [0x0000000000000000, 0x8000000000000000)",
		"view dc2 view-dc2-po-p2-r0 127.0.0.1:17409 HashPO [0x8000000000000000, 2^64)",
		"api dc2 api-dc2 10.0.2.5:7003",
	}
	same(t, "dc2", got, want)
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	// Every line of the example, comments aside, appears in doc.go.
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") && !strings.Contains(string(doc), l) {
			t.Errorf("doc.go's example lacks %q", l)
		}
	}
}

func TestEvenRanges(t *testing.T) {
	for n := 1; n <= 7; n++ {
		rs := EvenRanges(n)
		if len(rs) != n || rs[0].Start != 0 || rs[n-1].End != 0 {
			t.Fatalf("EvenRanges(%d) = %v", n, rs)
		}
		for p := 1; p < n; p++ {
			if rs[p].Start != rs[p-1].End || rs[p].Start == 0 {
				t.Fatalf("EvenRanges(%d) = %v", n, rs)
			}
		}
	}
	if rs := EvenRanges(4); rs[1].Start != 1<<62 || rs[3].Start != 3<<62 {
		t.Fatalf("EvenRanges(4) = %v", rs)
	}
	// Terraform's floor(p * 2^64 / 3).
	if rs := EvenRanges(3); rs[1].Start != 0x5555555555555555 || rs[2].Start != 0xaaaaaaaaaaaaaaaa {
		t.Fatalf("EvenRanges(3) = %v", rs)
	}
}

const header = "version: 1\nports: {base: 17000}\n"

const goodDC = `
  - name: dc1
    log_voters: 1
    api_servers: 1
    views:
      HashSP: {partitions: 2}
      HashPO: {partitions: 1}
`

// TestBadFiles checks that each mistake is reported, with its place, and
// that Validate reports them all at once.
func TestBadFiles(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       []string // each a problem's text, place included
	}{
		{"unknown field", header + "datacenters:" + goodDC + "    colour: blue\n",
			[]string{"line 10: field colour not found"}},
		{"unknown top-level field", header + "datacenter: []\n", []string{"field datacenter not found"}},
		{"bad version", "version: 2\ndatacenters: []\n", []string{"version 2; this build reads version 1"}},
		{"no version", "datacenters: []\n", []string{"version 0"}},
		{"empty", "", []string{"the file is empty"}},
		{"two documents", header + "datacenters:" + goodDC + "---\nversion: 1\n", []string{"more than one YAML document"}},
		{"bad bound", header + `datacenters:
  - name: dc1
    log_voters: 1
    api_servers: 1
    views:
      HashSP: {ranges: [{start: 0, end: half}]}
      HashPO: {partitions: 1}
`, []string{`line 8: bad hash bound "half"`}},
		{"no datacenters", header + "datacenters: []\n", []string{"datacenters: none"}},
		{"gap, overlap, empty range, tail missing", header + `datacenters:
  - name: dc1
    log_voters: 1
    api_servers: 1
    views:
      HashSP:
        ranges:
          - {start: 0, end: 0x4000000000000000}
          - {start: 0x5000000000000000, end: 0x9000000000000000}
          - {start: 0x8000000000000000, end: 0xa000000000000000}
          - {start: 0xb000000000000000, end: 0xb000000000000000}
      HashPO:
        ranges:
          - {start: 0, end: 0x8000000000000000}
          - {start: 0x8000000000000000}
`, []string{
			"datacenters[0] (dc1).views.HashSP: nothing covers [0x4000000000000000, 0x5000000000000000) (before ranges[1])",
			"datacenters[0] (dc1).views.HashSP: ranges[2] overlaps ranges[1] from 0x8000000000000000",
			"datacenters[0] (dc1).views.HashSP.ranges[3]: start 0xb000000000000000, end 0xb000000000000000: empty",
			"datacenters[0] (dc1).views.HashSP: nothing covers [0xa000000000000000, 2^64)",
			"datacenters[0] (dc1).views.HashPO.ranges[1]: give both start and end",
		}},
		{"split in progress still needs cover", header + `datacenters:
  - name: dc1
    log_voters: 1
    api_servers: 1
    views:
      HashSP:
        split_in_progress: true
        ranges:
          - {start: 0, end: 0x8000000000000000}
          - {start: 0, end: 0x4000000000000000}
      HashPO: {partitions: 1}
`, []string{"datacenters[0] (dc1).views.HashSP: nothing covers [0x8000000000000000, 2^64)"}},
		{"duplicates and counts", header + `datacenters:
  - name: dc1
    log_voters: 1
    log: [{raft: 127.0.0.1:17001, grpc: 127.0.0.1:17101}]
    api: [{addr: 127.0.0.1:17101}]
    views:
      HashSP: {partitions: 1, replicas: -1}
      hashpo: {partitions: 1}
      po: {partitions: 2}
  - name: dc1
    log_voters: 1
    api_servers: -1
  - name: "dc 3"
`, []string{
			"datacenters[0] (dc1): both log_voters and log: give one",
			`datacenters[0] (dc1).views: key "po": want HashSP or HashPO, each once`,
			"datacenters[0] (dc1).views.HashSP: replicas -1: want 1 or more",
			"datacenters[1] (dc1): api_servers -1: want 0 or more",
			`datacenters[2] (dc 3): name "dc 3": want letters, digits, - or _`,
			`datacenters: name "dc1" used twice`,
			"api-dc1: address 127.0.0.1:17101 is also log-dc1's",
			"log-dc1: two servers have this name",
			"datacenters[2] (dc 3): no servers",
		}},
		{"views need both spaces and an API server", header + `datacenters:
  - name: dc1
    log_voters: 1
    views:
      HashSP: {partitions: 1}
  - name: dc2
    api_servers: 1
`, []string{
			"datacenters[0] (dc1).views: no HashPO: a cluster partitions both spaces",
			"datacenters[0] (dc1): views but no API server",
			"datacenters[1] (dc2): API servers but no views",
		}},
		{"no log voter", header + `datacenters:
  - name: dc1
    api_servers: 1
    views:
      HashSP: {partitions: 1}
      HashPO: {partitions: 1}
`, []string{"datacenters: no log voter"}},
		{"addresses", `version: 1
datacenters:
  - name: dc1
    log: [{id: "log one", raft: "10.0.0.1", grpc: "10.0.0.1:99999"}]
    api: [{addr: 10.0.0.2:7003}]
    views:
      HashSP:
        ranges:
          - {start: 0, end: max, replicas: 2, addrs: [10.0.0.3:7002]}
      HashPO: {partitions: 1}
`, []string{
			`datacenters[0] (dc1).log[0]: id "log one": want letters`,
			`datacenters[0] (dc1).log[0]: raft address "10.0.0.1": want host:port`,
			`datacenters[0] (dc1).log[0]: grpc address "10.0.0.1:99999": want host:port`,
			"datacenters[0] (dc1).views.HashSP.ranges[0]: replicas 2 but 1 addrs",
			"datacenters[0] (dc1).views.HashPO.ranges[0] (replica 0): no view address, and no ports to derive it from",
		}},
		{"derived layout limits", "version: 1\nports: {base: 64000}\ndatacenters:\n" + strings.Repeat(goodDC, 5) + strings.Replace(goodDC, "partitions: 2", "partitions: 5000", 1) + `
  - name: dc7
    log_voters: 11
    api_servers: 1
    views:
      HashSP: {partitions: 1}
      HashPO: {partitions: 1}
`, []string{
			"ports.base: 64000: want 1..63536",
			"datacenters[5] (dc1).views.HashSP: 5000 partitions: at most 1024",
			"datacenters[6] (dc7).log_voters (voter 10): derived addresses cover 10 per datacenter only",
			"datacenters[6] (dc7).views.HashSP.ranges[0] (replica 0): derived view addresses cover the first 6 datacenters only",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			top, err := Parse([]byte(tc.file))
			if err == nil {
				err = top.Validate()
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v, want ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("no problem %q in:\n%v", w, err)
				}
			}
		})
	}
}

// FuzzParse: no input makes Parse, Validate or Servers panic, and a valid
// topology's views tile each space of each DC.
func FuzzParse(f *testing.F) {
	for _, p := range []string{filepath.Join("testdata", "example.yaml"), filepath.Join("..", "..", "localstack", "topology.yaml")} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(header + "datacenters:" + goodDC))
	f.Fuzz(func(t *testing.T, data []byte) {
		top, err := Parse(data)
		if err != nil {
			return
		}
		valid := top.Validate() == nil
		servers := top.Servers()
		if !valid {
			return
		}
		names := map[string]bool{}
		for _, s := range servers {
			if s.Name == "" || s.Addr == "" || names[s.Name] {
				t.Fatalf("server %+v", s)
			}
			names[s.Name] = true
		}
	})
}
