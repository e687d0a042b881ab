package topology

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// Marshal encodes the topology as YAML that Parse reads back equal. Keys
// at their zero value are left out, each DC's views list HashSP before
// HashPO, and a space given by count, a range, a listed log voter and a
// listed API server each take one line (flow style), as in the package
// documentation's example.
func (t *Topology) Marshal() ([]byte, error) {
	var doc yaml.Node
	if err := doc.Encode(t); err != nil {
		return nil, fmt.Errorf("encode topology: %w", err)
	}
	for _, dc := range value(&doc, "datacenters").Content {
		for _, k := range []string{"log", "api"} {
			for _, item := range value(dc, k).Content {
				item.Style = yaml.FlowStyle
			}
		}
		views := value(dc, "views")
		orderViews(views)
		for i := 1; i < len(views.Content); i += 2 {
			sp := views.Content[i]
			ranges := value(sp, "ranges")
			if ranges.Kind == 0 {
				sp.Style = yaml.FlowStyle
			}
			lastKey(sp, "ranges") // after the space's replicas and split_in_progress
			for _, r := range ranges.Content {
				r.Style = yaml.FlowStyle
				for _, k := range []string{"start", "end"} {
					// The bounds are strings (Bound.MarshalYAML), which the
					// encoder would quote because 0x... reads as a number:
					// it does, and Bound reads it back.
					if b := value(r, k); strings.HasPrefix(b.Value, "0x") {
						b.Tag, b.Style = "!!int", 0
					}
				}
			}
		}
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("encode topology: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// value is the value of key in the mapping m, or an empty node.
func value(m *yaml.Node, key string) *yaml.Node {
	if m.Kind == yaml.DocumentNode && len(m.Content) == 1 {
		m = m.Content[0]
	}
	if m.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == key {
				return m.Content[i+1]
			}
		}
	}
	return &yaml.Node{}
}

// lastKey moves key and its value to the end of the mapping m.
func lastKey(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			kv := []*yaml.Node{m.Content[i], m.Content[i+1]}
			m.Content = append(append(m.Content[:i:i], m.Content[i+2:]...), kv...)
			return
		}
	}
}

// orderViews puts a views mapping's keys in model order (the encoder sorts
// them: HashPO first); unknown keys stay after, as they were.
func orderViews(views *yaml.Node) {
	if views.Kind != yaml.MappingNode {
		return
	}
	var ordered []*yaml.Node
	taken := map[int]bool{}
	for _, s := range Spaces {
		for i := 0; i+1 < len(views.Content); i += 2 {
			if views.Content[i].Value == s.String() {
				ordered = append(ordered, views.Content[i], views.Content[i+1])
				taken[i] = true
			}
		}
	}
	for i := 0; i+1 < len(views.Content); i += 2 {
		if !taken[i] {
			ordered = append(ordered, views.Content[i], views.Content[i+1])
		}
	}
	views.Content = ordered
}

// Write replaces the file at path by t, atomically: a temporary file in
// the same directory, synced, then renamed over it, so a reader (the local
// stack's scripts, another command) sees the old file or the new one,
// never half. The comment lines at the top of the replaced file are kept;
// comments anywhere else are not.
func Write(path string, t *Topology) error {
	data, err := t.Marshal()
	if err != nil {
		return err
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	data = append(leadingComments(old), data...)
	mode := fs.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	// The rename is durable once the directory is synced.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// leadingComments is the leading comment block of a YAML file: its lines up to the
// first that is neither a comment nor blank, without trailing blank lines
// but with one blank line after it.
func leadingComments(data []byte) []byte {
	var keep []string
	for _, l := range strings.SplitAfter(string(data), "\n") {
		if s := strings.TrimSpace(l); s != "" && !strings.HasPrefix(s, "#") {
			break
		}
		keep = append(keep, strings.TrimRight(l, "\r\n"))
	}
	for len(keep) > 0 && strings.TrimSpace(keep[len(keep)-1]) == "" {
		keep = keep[:len(keep)-1]
	}
	if len(keep) == 0 {
		return nil
	}
	return []byte(strings.Join(keep, "\n") + "\n\n")
}

// Clone is a deep copy of t.
func (t *Topology) Clone() *Topology {
	c := &Topology{Version: t.Version}
	if t.Ports != nil {
		p := *t.Ports
		c.Ports = &p
	}
	for _, dc := range t.Datacenters {
		if dc == nil {
			c.Datacenters = append(c.Datacenters, nil)
			continue
		}
		d := &DC{Name: dc.Name, LogVoters: dc.LogVoters, APIServers: dc.APIServers}
		d.Log = cloneList(dc.Log)
		d.API = cloneList(dc.API)
		if dc.Views != nil {
			d.Views = map[string]*Space{}
			for k, sp := range dc.Views {
				d.Views[k] = sp.Clone()
			}
		}
		c.Datacenters = append(c.Datacenters, d)
	}
	return c
}

// Clone is a deep copy of s (nil for nil).
func (s *Space) Clone() *Space {
	if s == nil {
		return nil
	}
	c := *s
	c.Ranges = nil
	for _, r := range s.Ranges {
		if r == nil {
			c.Ranges = append(c.Ranges, nil)
			continue
		}
		rc := *r
		rc.Addrs = append([]string(nil), r.Addrs...)
		c.Ranges = append(c.Ranges, &rc)
	}
	return &c
}

func cloneList[T any](in []*T) []*T {
	if in == nil {
		return nil
	}
	out := make([]*T, len(in))
	for i, p := range in {
		if p != nil {
			v := *p
			out[i] = &v
		}
	}
	return out
}

// PinViews writes out the views of the DC named dc: each space becomes a
// list of ranges, each with its name and the addresses servers (t's
// Servers, resolved with the port base the deployment runs with) give its
// views. Derived view addresses depend on the listing order, so a DC whose
// ranges are about to be added or removed is pinned first: no other view
// moves, and each keeps its name.
func (t *Topology) PinViews(dc string, servers []Server) error {
	var d *DC
	for _, x := range t.Datacenters {
		if x != nil && x.Name == dc {
			d = x
		}
	}
	if d == nil {
		return fmt.Errorf("no datacenter %q", dc)
	}
	_, specs, bad := spaceKeys(d.Views)
	if len(bad) > 0 {
		return fmt.Errorf("%s: views keys %v: want HashSP and HashPO", dc, bad)
	}
	for space, spec := range specs {
		if spec == nil {
			return fmt.Errorf("%s: %s is empty", dc, space)
		}
		var pinned []*Range
		for p, rg := range spec.ranges() {
			if rg == nil {
				return fmt.Errorf("%s: %s range %d is empty", dc, space, p)
			}
			name := rg.Name
			if name == "" {
				name = fmt.Sprintf("p%d", p)
			}
			var addrs []string
			for _, s := range servers {
				if s.Role == RoleView && s.DC == dc && s.Space == space && s.Partition == p {
					addrs = append(addrs, s.Addr)
				}
			}
			if len(addrs) != rg.replicas(spec) {
				return fmt.Errorf("%s: %s range %s has %d views, the servers list %d", dc, space, name, rg.replicas(spec), len(addrs))
			}
			pinned = append(pinned, &Range{Name: name, Start: rg.Start, End: rg.End, Addrs: addrs})
		}
		spec.Partitions, spec.Ranges = 0, pinned
	}
	return nil
}
