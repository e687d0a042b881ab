package topology

import (
	"fmt"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/akutan/akutan/model"
)

// Role is what a server is.
type Role string

// The roles.
const (
	RoleLog  Role = "log"
	RoleView Role = "view"
	RoleAPI  Role = "api"
)

// ParseRole parses log, view or api.
func ParseRole(s string) (Role, error) {
	switch r := Role(strings.ToLower(s)); r {
	case RoleLog, RoleView, RoleAPI:
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q (want log, view or api)", s)
}

// Server is one server the topology asks for.
type Server struct {
	// Name is stable: log-dc1, view-dc1-sp-p0-r0, api-dc1 (see the package
	// documentation).
	Name string
	Role Role
	DC   string
	// Addr is the gRPC address: the log's, the view's or the API's.
	Addr string
	// Raft is a log voter's Raft address; empty for other roles.
	Raft string
	// Space and Range are a view's; zero for other roles. Range.End 0
	// stands for 2^64.
	Space model.Space
	Range model.HashRange
	// Partition is the view's range position in its space's list, Replica
	// its position among the range's views; zero for other roles.
	Partition, Replica int
}

// Servers lists every server of a valid topology: DC by DC in file order,
// each DC's log voters, then its views (HashSP then HashPO, by range, by
// replica), then its API servers. Addresses the file leaves out are
// derived from Ports. On a topology that Validate rejects, the list is
// best effort.
func (t *Topology) Servers() []Server {
	servers, _ := t.resolve()
	return servers
}

// Derived port layout (the local stack's), from Ports.Base for the DC at
// position d (1-based): log voter i at Raft base+d+10i and gRPC
// base+100+d+10i, API server j at base+200+d+10j, the DC's n-th view
// (1-based, in listing order) at base+300+(d-1)*100+n. MinIO and
// Prometheus of the local stack use base+900 and up, and every server's
// HTTP listener is its gRPC port + 1000.
const (
	maxDerivedDCs      = 9  // log and API ports
	maxDerivedViewDCs  = 6  // view ports stop below base+900
	maxDerivedPerDC    = 10 // log voters or API servers of one DC
	maxDerivedViews    = 99 // views of one DC
	derivedPortsAbove  = 1999
	defaultDerivedHost = "127.0.0.1"
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

// resolver walks a topology once, building its servers and noting every
// problem with its place.
type resolver struct {
	t        *Topology
	servers  []Server
	problems []Problem
}

func (r *resolver) problem(where, format string, args ...any) {
	r.problems = append(r.problems, Problem{Where: where, What: fmt.Sprintf(format, args...)})
}

// resolve builds the servers and collects the problems of the topology.
func (t *Topology) resolve() ([]Server, []Problem) {
	r := &resolver{t: t}
	if t.Ports != nil {
		if t.Ports.Base < 1 || t.Ports.Base+derivedPortsAbove > 65535 {
			r.problem("ports.base", "%d: want 1..%d, so that base+%d is a port", t.Ports.Base, 65535-derivedPortsAbove, derivedPortsAbove)
		}
	}
	if len(t.Datacenters) == 0 {
		r.problem("datacenters", "none: a database needs at least one datacenter")
	}
	voters := 0
	for i, dc := range t.Datacenters {
		where := fmt.Sprintf("datacenters[%d]", i)
		if dc == nil {
			r.problem(where, "empty")
			continue
		}
		if dc.Name != "" {
			where += " (" + dc.Name + ")"
		}
		if !nameRE.MatchString(dc.Name) {
			r.problem(where, "name %q: want letters, digits, - or _", dc.Name)
		}
		voters += r.dc(where, i+1, dc)
	}
	if voters < 1 && len(t.Datacenters) > 0 {
		r.problem("datacenters", "no log voter: the log needs at least one")
	}
	r.duplicates()
	return r.servers, r.problems
}

// addr is an explicit address, or the derived one at port base+offset.
func (r *resolver) addr(where, what, explicit string, offset int, derivable bool) string {
	if explicit != "" {
		host, port, err := net.SplitHostPort(explicit)
		if p, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || p < 1 || p > 65535 {
			r.problem(where, "%s address %q: want host:port", what, explicit)
		}
		return explicit
	}
	p := r.t.Ports
	if p == nil {
		r.problem(where, "no %s address, and no ports to derive it from", what)
		return ""
	}
	if !derivable {
		return "" // the caller reported why
	}
	host := p.Host
	if host == "" {
		host = defaultDerivedHost
	}
	return net.JoinHostPort(host, strconv.Itoa(p.Base+offset))
}

// Bounds of the counts, which also bound the work of Validate.
const (
	maxLogVoters  = 32   // per DC
	maxAPIServers = 256  // per DC
	maxPartitions = 1024 // per space per DC
	maxReplicas   = 32   // per range
)

// count checks the choice between a count and a list of a DC's servers,
// and returns how many there are, at most limit.
func (r *resolver) count(where, countKey, listKey string, n, listed, limit int) int {
	switch {
	case n < 0:
		r.problem(where, "%s %d: want 0 or more", countKey, n)
		return 0
	case n > 0 && listed > 0:
		r.problem(where, "both %s and %s: give one", countKey, listKey)
	}
	return r.atMost(where, countKey, max(n, listed), limit)
}

// atMost returns n, or limit with a problem when n is above it.
func (r *resolver) atMost(where, what string, n, limit int) int {
	if n > limit {
		r.problem(where, "%s %d: at most %d", what, n, limit)
		return limit
	}
	return n
}

// dc resolves one datacenter at 1-based position d; it returns its number
// of log voters.
func (r *resolver) dc(where string, d int, dc *DC) int {
	nlog := r.count(where, "log_voters", "log", dc.LogVoters, len(dc.Log), maxLogVoters)
	for i := 0; i < nlog; i++ {
		v, w := item(where, "log", "log_voters", "voter", dc.Log, i)
		derivable := r.derivable(w, "log voter", d, maxDerivedDCs, i, maxDerivedPerDC, v.Raft == "" || v.GRPC == "")
		name := r.name(w, "id", v.ID, indexed("log-"+dc.Name, i))
		r.servers = append(r.servers, Server{
			Name: name, Role: RoleLog, DC: dc.Name,
			Raft: r.addr(w, "raft", v.Raft, d+10*i, derivable),
			Addr: r.addr(w, "grpc", v.GRPC, 100+d+10*i, derivable),
		})
	}

	views := r.views(where, d, dc)

	napi := r.count(where, "api_servers", "api", dc.APIServers, len(dc.API), maxAPIServers)
	for j := 0; j < napi; j++ {
		a, w := item(where, "api", "api_servers", "server", dc.API, j)
		derivable := r.derivable(w, "API server", d, maxDerivedDCs, j, maxDerivedPerDC, a.Addr == "")
		name := r.name(w, "name", a.Name, indexed("api-"+dc.Name, j))
		r.servers = append(r.servers, Server{Name: name, Role: RoleAPI, DC: dc.Name,
			Addr: r.addr(w, "grpc", a.Addr, 200+d+10*j, derivable)})
	}
	switch {
	case nlog == 0 && !views && napi == 0:
		r.problem(where, "no servers: give log voters, or views and API servers")
	case views && napi == 0:
		r.problem(where, "views but no API server: a cluster needs at least one (api_servers or api)")
	case !views && napi > 0:
		r.problem(where, "API servers but no views: a cluster needs views of HashSP and HashPO")
	}
	return nlog
}

// item is server i of a DC's list, or an empty one when a count gives the
// servers, and its place in the file.
func item[T any](where, listKey, countKey, unit string, list []*T, i int) (*T, string) {
	if len(list) == 0 {
		return new(T), fmt.Sprintf("%s.%s (%s %d)", where, countKey, unit, i)
	}
	w := fmt.Sprintf("%s.%s[%d]", where, listKey, i)
	if list[i] == nil {
		return new(T), w
	}
	return list[i], w
}

// name is the name the file gives, checked, or else the derived one.
func (r *resolver) name(where, key, given, derived string) string {
	if given == "" {
		return derived
	}
	if !nameRE.MatchString(given) {
		r.problem(where, "%s %q: want letters, digits, - or _", key, given)
	}
	return given
}

// indexed is base for the first server and base-i for the others, so a
// name never changes when servers are added.
func indexed(base string, i int) string {
	if i == 0 {
		return base
	}
	return fmt.Sprintf("%s-%d", base, i)
}

// derivable reports whether an address may be derived for the server at
// position i of the DC at position d, noting why not when it is needed.
func (r *resolver) derivable(where, what string, d, maxDC, i, maxI int, needed bool) bool {
	if !needed || r.t.Ports == nil {
		return true
	}
	switch {
	case d > maxDC:
		r.problem(where, "derived addresses cover the first %d datacenters only; give this %s's addresses", maxDC, what)
		return false
	case i >= maxI:
		r.problem(where, "derived addresses cover %d per datacenter only; give this %s's addresses", maxI, what)
		return false
	}
	return true
}

// views resolves a DC's views; it reports whether the DC has any.
func (r *resolver) views(where string, d int, dc *DC) bool {
	if len(dc.Views) == 0 {
		return false
	}
	ordered, specs, bad := spaceKeys(dc.Views)
	for _, k := range bad {
		r.problem(where+".views", "key %q: want HashSP or HashPO, each once", k)
	}
	for _, s := range Spaces {
		if _, ok := specs[s]; !ok {
			r.problem(where+".views", "no %s: a cluster partitions both spaces", s)
		}
	}
	n := 0 // the DC's views so far, for derived ports
	for _, s := range ordered {
		spec := specs[s]
		w := where + ".views." + s.String()
		if spec == nil {
			r.problem(w, "empty: give partitions or ranges")
			continue
		}
		switch {
		case spec.Partitions < 0:
			r.problem(w, "partitions %d: want 1 or more", spec.Partitions)
		case spec.Partitions > 0 && len(spec.Ranges) > 0:
			r.problem(w, "both partitions and ranges: give one")
		case spec.Partitions == 0 && len(spec.Ranges) == 0:
			r.problem(w, "no partitions or ranges")
		}
		if spec.Replicas < 0 {
			r.problem(w, "replicas %d: want 1 or more", spec.Replicas)
		}
		if spec.Partitions > maxPartitions || len(spec.Ranges) > maxPartitions {
			r.problem(w, "%d partitions: at most %d", max(spec.Partitions, len(spec.Ranges)), maxPartitions)
			continue
		}
		ranges := spec.ranges()
		r.tiling(w, spec, ranges)
		names := map[string]int{}
		for p, rg := range ranges {
			rw := fmt.Sprintf("%s.ranges[%d]", w, p)
			if rg == nil {
				continue // tiling reported it
			}
			part := r.name(rw, "name", rg.Name, fmt.Sprintf("p%d", p))
			if q, dup := names[part]; dup {
				r.problem(rw, "name %q is also ranges[%d]'s", part, q)
			}
			names[part] = p
			if rg.Replicas < 0 {
				r.problem(rw, "replicas %d: want 1 or more", rg.Replicas)
			}
			if rg.Replicas > 0 && len(rg.Addrs) > 0 && rg.Replicas != len(rg.Addrs) {
				r.problem(rw, "replicas %d but %d addrs", rg.Replicas, len(rg.Addrs))
			}
			nrep := r.atMost(rw, "replicas", rg.replicas(spec), maxReplicas)
			for k := 0; k < nrep; k++ {
				n++
				var explicit string
				if k < len(rg.Addrs) {
					explicit = rg.Addrs[k]
				}
				vw := fmt.Sprintf("%s (replica %d)", rw, k)
				derivable := true
				if explicit == "" && r.t.Ports != nil {
					switch {
					case d > maxDerivedViewDCs:
						r.problem(vw, "derived view addresses cover the first %d datacenters only; give addrs", maxDerivedViewDCs)
						derivable = false
					case n > maxDerivedViews:
						r.problem(vw, "derived view addresses cover %d views per datacenter only; give addrs", maxDerivedViews)
						derivable = false
					}
				}
				r.servers = append(r.servers, Server{
					Name: fmt.Sprintf("view-%s-%s-%s-r%d", dc.Name, shortSpace(s), part, k),
					Role: RoleView, DC: dc.Name, Space: s, Range: rg.hashRange(), Partition: p, Replica: k,
					Addr: r.addr(vw, "view", explicit, 300+(d-1)*100+n, derivable),
				})
			}
		}
	}
	return true
}

// tiling checks that a space's ranges tile [0, 2^64) exactly, or, while a
// split is in progress, cover it.
func (r *resolver) tiling(where string, spec *Space, ranges []*Range) {
	type span struct {
		i          int
		start, end uint64 // end 0 is 2^64
	}
	var spans []span
	for i, rg := range ranges {
		rw := fmt.Sprintf("%s.ranges[%d]", where, i)
		switch {
		case rg == nil:
			r.problem(rw, "empty: give start and end")
			continue
		case !rg.Start.Set || !rg.End.Set:
			r.problem(rw, "give both start and end")
			continue
		case rg.Start.Max:
			r.problem(rw, "start max: a range cannot start at 2^64")
			continue
		}
		hr := rg.hashRange()
		if err := hr.Validate(); err != nil {
			r.problem(rw, "start %#x, end %#x: empty (end 0 or max stands for 2^64)", hr.Start, hr.End)
			continue
		}
		spans = append(spans, span{i, hr.Start, hr.End})
	}
	if len(spans) == 0 {
		return
	}
	sort.SliceStable(spans, func(a, b int) bool { return spans[a].start < spans[b].start })
	str := func(v uint64) string {
		if v == 0 {
			return "2^64"
		}
		return fmt.Sprintf("%#x", v)
	}
	// reach is how far [0, reach) is covered; done when it reaches 2^64.
	var reach uint64
	done, reachBy := false, -1
	for _, s := range spans {
		switch {
		case done || (s.start < reach):
			if !spec.SplitInProgress {
				r.problem(where, "ranges[%d] overlaps ranges[%d] from %#x (set split_in_progress while old and new ranges overlap)", s.i, reachBy, s.start)
			}
		case s.start > reach:
			r.problem(where, "nothing covers [%#x, %#x) (before ranges[%d])", reach, s.start, s.i)
		}
		if done {
			continue
		}
		if s.end == 0 {
			done, reachBy = true, s.i
		} else if s.end > reach {
			reach, reachBy = s.end, s.i
		}
	}
	if !done {
		r.problem(where, "nothing covers [%s, 2^64) (the last range ends at %s; end max is 2^64)", str(reach), str(reach))
	}
}

// duplicates notes server names and addresses used twice.
func (r *resolver) duplicates() {
	names := map[string]bool{}
	addrs := map[string]string{}
	dcs := map[string]bool{}
	for _, dc := range r.t.Datacenters {
		if dc == nil || dc.Name == "" {
			continue
		}
		if dcs[dc.Name] {
			r.problem("datacenters", "name %q used twice", dc.Name)
		}
		dcs[dc.Name] = true
	}
	for _, s := range r.servers {
		if names[s.Name] {
			r.problem(s.Name, "two servers have this name")
		}
		names[s.Name] = true
		for _, a := range []string{s.Addr, s.Raft} {
			if a == "" {
				continue
			}
			if prev, dup := addrs[a]; dup {
				r.problem(s.Name, "address %s is also %s's", a, prev)
			}
			addrs[a] = s.Name
		}
	}
}
