package topology

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestWriteRoundTrip: Parse(Marshal(t)) is t, for the documented example,
// the local stack's file and a DC written out explicitly as repartition
// does; the servers and the verdict of Validate are the same too.
func TestWriteRoundTrip(t *testing.T) {
	explicit := `version: 1
ports: {base: 20000}
datacenters:
  - name: dc1
    log_voters: 1
    api:
      - {name: api-x, addr: 127.0.0.1:20201}
    views:
      HashPO:
        ranges:
          - {name: p0, start: 0, end: max, addrs: [127.0.0.1:20302]}
      HashSP:
        replicas: 2
        split_in_progress: true
        ranges:
          - {name: p0, start: 0, end: max, replicas: 1, addrs: [127.0.0.1:20301]}
          - {name: g2p0, start: 0, end: 0x5555555555555555, addrs: [127.0.0.1:20303, 127.0.0.1:20304]}
          - {name: g2p1, start: 0x5555555555555555, end: 0, addrs: [127.0.0.1:20305, 127.0.0.1:20306]}
`
	inputs := map[string][]byte{"explicit": []byte(explicit)}
	for _, p := range []string{filepath.Join("testdata", "example.yaml"), filepath.Join("..", "..", "localstack", "topology.yaml")} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		inputs[p] = data
	}
	for name, data := range inputs {
		t.Run(name, func(t *testing.T) {
			top := mustValid(t, string(data))
			out, err := top.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			back, err := Parse(out)
			if err != nil {
				t.Fatalf("parse what Marshal wrote: %v\n%s", err, out)
			}
			if !reflect.DeepEqual(back, top) {
				t.Fatalf("round trip differs:\n%s", out)
			}
			if err := back.Validate(); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !reflect.DeepEqual(back.Servers(), top.Servers()) {
				t.Fatalf("servers differ after the round trip:\n%s", out)
			}
			// A copy is equal, and shares nothing.
			c := top.Clone()
			if !reflect.DeepEqual(c, top) {
				t.Fatal("clone differs")
			}
			for _, dc := range c.Datacenters {
				for _, sp := range dc.Views {
					sp.Replicas = 99
					for _, r := range sp.Ranges {
						r.Addrs = append(r.Addrs[:0:0], "x")
						r.Name = "changed"
					}
				}
			}
			if !reflect.DeepEqual(back, top) {
				t.Fatal("changing the clone changed the original")
			}
		})
	}
	// The explicit DC reads as the example's style: HashSP first, one
	// line per range, zero keys left out.
	top := mustValid(t, explicit)
	out, _ := top.Marshal()
	s := string(out)
	if strings.Index(s, "HashSP:") > strings.Index(s, "HashPO:") ||
		!strings.Contains(s, "        split_in_progress: true\n        ranges:\n") ||
		!strings.Contains(s, "          - {name: g2p1, start: 0x5555555555555555, end: 0x0, addrs: ['127.0.0.1:20305', '127.0.0.1:20306']}\n") || strings.Contains(s, "partitions") {
		t.Fatalf("not in the documented style:\n%s", s)
	}
	local := mustValid(t, string(inputs[filepath.Join("..", "..", "localstack", "topology.yaml")]))
	if out, _ := local.Marshal(); !strings.Contains(string(out), "      HashSP: {partitions: 2, replicas: 1}\n") {
		t.Fatalf("a space by count is not one line:\n%s", out)
	}
}

// TestWriteFile: Write keeps the leading comments, replaces the file
// whole and leaves no temporary file behind.
func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "topology.yaml")
	orig := "# The stack.\n#\n# More words.\n\nversion: 1 # a comment that is lost\nports: {base: 17000}\n" +
		"datacenters:\n  - name: dc1\n    log_voters: 1\n    api_servers: 1\n" +
		"    views: {HashSP: {partitions: 1}, HashPO: {partitions: 1}}\n"
	if err := os.WriteFile(path, []byte(orig), 0o640); err != nil {
		t.Fatal(err)
	}
	top, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	top.Datacenters[0].Views["HashSP"].Partitions = 4
	if err := Write(path, top); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "# The stack.\n#\n# More words.\n\nversion: 1\n") {
		t.Fatalf("header not kept:\n%s", data)
	}
	back, err := Load(path)
	if err != nil || !reflect.DeepEqual(back, top) {
		t.Fatalf("read back %v:\n%s", err, data)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want the original 0640", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
	// A new file has no header; a missing directory is an error.
	fresh := filepath.Join(dir, "new.yaml")
	if err := Write(fresh, top); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(fresh); !strings.HasPrefix(string(data), "version: 1\n") {
		t.Fatalf("new file:\n%s", data)
	}
	if err := Write(filepath.Join(dir, "no", "such.yaml"), top); err == nil {
		t.Fatal("writing into a missing directory succeeded")
	}
}
