package topology

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/akutan/akutan/model"
)

// Version is the only version of the file format.
const Version = 1

// ErrInvalid is wrapped by every error of Parse, Load and Validate.
var ErrInvalid = errors.New("invalid topology")

// Topology is a parsed topology file. Its fields mirror the YAML keys; see
// the package documentation for their meaning.
type Topology struct {
	Version     int    `yaml:"version"`
	Ports       *Ports `yaml:"ports,omitempty"`
	Datacenters []*DC  `yaml:"datacenters"`
}

// Ports derives the addresses the file leaves out.
type Ports struct {
	Host string `yaml:"host,omitempty"`
	Base int    `yaml:"base"`
}

// DC is one datacenter: one Akutan cluster plus its share of the log.
type DC struct {
	Name string `yaml:"name"`
	// LogVoters is how many log voters with derived addresses the DC has;
	// Log lists them with explicit addresses instead.
	LogVoters int         `yaml:"log_voters,omitempty"`
	Log       []*LogVoter `yaml:"log,omitempty"`
	// APIServers is how many API servers with derived addresses the DC
	// has; API lists them with explicit addresses instead.
	APIServers int          `yaml:"api_servers,omitempty"`
	API        []*APIServer `yaml:"api,omitempty"`
	// Views holds each space's partitioning, keyed HashSP and HashPO.
	Views map[string]*Space `yaml:"views,omitempty"`
}

// LogVoter is one voter of the log.
type LogVoter struct {
	ID   string `yaml:"id,omitempty"`
	Raft string `yaml:"raft,omitempty"`
	GRPC string `yaml:"grpc,omitempty"`
}

// APIServer is one API server.
type APIServer struct {
	Name string `yaml:"name,omitempty"`
	Addr string `yaml:"addr,omitempty"`
}

// Space is one space's partitioning in one DC.
type Space struct {
	// Partitions is a shorthand for that many even ranges.
	Partitions int      `yaml:"partitions,omitempty"`
	Ranges     []*Range `yaml:"ranges,omitempty"`
	// Replicas is the number of views of each range that does not say.
	Replicas int `yaml:"replicas,omitempty"`
	// SplitInProgress allows ranges to overlap, as while old and new
	// partitions run side by side; they must still cover every point.
	SplitInProgress bool `yaml:"split_in_progress,omitempty"`
}

// Range is one partition: the half-open hash range [Start, End).
type Range struct {
	Name     string   `yaml:"name,omitempty"`
	Start    Bound    `yaml:"start"`
	End      Bound    `yaml:"end"`
	Replicas int      `yaml:"replicas,omitempty"`
	Addrs    []string `yaml:"addrs,omitempty"`
}

// Bound is a range bound: a uint64 in decimal or 0x hex, or max (2^64).
type Bound struct {
	Value uint64
	Max   bool // 2^64 (Value is 0)
	Set   bool // present in the file
}

// UnmarshalYAML parses a bound with model.ParseHashBound.
func (b *Bound) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a range bound is a number or max", n.Line)
	}
	v, max, err := model.ParseHashBound(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*b = Bound{Value: v, Max: max, Set: true}
	return nil
}

// MarshalYAML writes the bound back as hex, or max.
func (b Bound) MarshalYAML() (any, error) {
	if b.Max {
		return "max", nil
	}
	return fmt.Sprintf("%#x", b.Value), nil
}

// Parse decodes a topology file strictly: unknown fields, a second
// document and a wrong version are errors. It does not validate; call
// Validate, after any override such as a different port base.
func Parse(data []byte) (*Topology, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var t Topology
	if err := dec.Decode(&t); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the file is empty", ErrInvalid)
		}
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: more than one YAML document", ErrInvalid)
	}
	if t.Version != Version {
		return nil, fmt.Errorf("%w: version %d; this build reads version %d", ErrInvalid, t.Version, Version)
	}
	return &t, nil
}

// Load reads and parses the file at path.
func Load(path string) (*Topology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// SetEven replaces every space's partitioning in every DC by partitions
// even ranges with replicas views each (0 keeps that part as it is). It
// drops explicit view addresses, so they are derived from Ports. It is the
// local stack's AKUTAN_PARTITIONS and AKUTAN_REPLICAS.
func (t *Topology) SetEven(partitions, replicas int) {
	for _, dc := range t.Datacenters {
		if dc == nil {
			continue
		}
		for _, sp := range dc.Views {
			if sp == nil {
				continue
			}
			if partitions > 0 {
				sp.Partitions, sp.Ranges, sp.SplitInProgress = partitions, nil, false
			}
			if replicas > 0 {
				sp.Replicas = replicas
				for _, r := range sp.Ranges {
					if r != nil {
						r.Replicas, r.Addrs = 0, nil
					}
				}
			}
		}
	}
}

// EvenRanges splits the hash space into n ranges: range p is
// [floor(p * 2^64 / n), floor((p+1) * 2^64 / n)), the same formula as
// Terraform's view_partitions; the last ends at 2^64 (End 0).
func EvenRanges(n int) []model.HashRange {
	if n < 1 {
		return nil
	}
	out := make([]model.HashRange, n)
	for p := range out {
		out[p].Start = evenBound(p, n)
		out[p].End = evenBound(p+1, n) // evenBound(n, n) is 0: 2^64
	}
	return out
}

// evenBound is floor(p * 2^64 / n) for 0 <= p < n, and 0 (2^64) for p == n.
func evenBound(p, n int) uint64 {
	if p >= n {
		return 0
	}
	q, _ := bits.Div64(uint64(p), 0, uint64(n))
	return q
}

// spaceKeys parses the keys of a DC's views, in model order.
func spaceKeys(views map[string]*Space) (ordered []model.Space, specs map[model.Space]*Space, bad []string) {
	specs = map[model.Space]*Space{}
	keys := make([]string, 0, len(views))
	for k := range views {
		keys = append(keys, k)
	}
	sort.Strings(keys) // which of two keys for one space is reported
	for _, k := range keys {
		v := views[k]
		s, err := model.ParseSpace(k)
		if err != nil {
			bad = append(bad, k)
			continue
		}
		if _, dup := specs[s]; dup {
			bad = append(bad, k)
			continue
		}
		specs[s] = v
	}
	for _, s := range Spaces {
		if _, ok := specs[s]; ok {
			ordered = append(ordered, s)
		}
	}
	return ordered, specs, bad
}

// Spaces are the spaces every DC with views partitions, in listing order.
var Spaces = []model.Space{model.SpaceSP, model.SpacePO}

// shortSpace is a space in a server name: sp or po.
func shortSpace(s model.Space) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "Hash"))
}

// ranges is a space's ranges, expanded from the shorthand if used.
func (s *Space) ranges() []*Range {
	if len(s.Ranges) > 0 || s.Partitions < 1 {
		return s.Ranges
	}
	out := make([]*Range, s.Partitions)
	for p, r := range EvenRanges(s.Partitions) {
		out[p] = &Range{Start: Bound{Value: r.Start, Set: true}, End: Bound{Value: r.End, Max: r.End == 0, Set: true}}
	}
	return out
}

// hashRange is the range as a model.HashRange (End 0 for 2^64).
func (r *Range) hashRange() model.HashRange {
	return model.HashRange{Start: r.Start.Value, End: r.End.Value}
}

// replicas is how many views the range has.
func (r *Range) replicas(s *Space) int {
	switch {
	case len(r.Addrs) > 0:
		return len(r.Addrs)
	case r.Replicas > 0:
		return r.Replicas
	case s.Replicas > 0:
		return s.Replicas
	}
	return 1
}
