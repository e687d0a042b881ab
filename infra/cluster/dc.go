package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/infra/topology"
	"github.com/akutan/akutan/proto/apipb"
	"github.com/akutan/akutan/proto/logpb"
	"github.com/akutan/akutan/snapshot"
)

// ErrNoSuchDC: the topology file has no datacenter of that name.
var ErrNoSuchDC = errors.New("no such datacenter in the topology")

// Registry is the cluster registry (snapshot.ClusterRegistryKey) as the
// datacenter procedures use it. The truncation coordinator reads the
// critical clusters from it on every plan.
type Registry interface {
	Load(ctx context.Context) (*snapshot.ClusterRegistry, error)
	// Set registers dc, or changes whether it is critical.
	Set(ctx context.Context, dc string, critical bool) error
	// Remove drops dc, which must not be critical.
	Remove(ctx context.Context, dc string) error
}

// StoreRegistry is the registry in the bucket, written with the
// conditional puts of snapshot.UpdateClusterRegistry.
type StoreRegistry struct{ Store snapshot.Store }

var _ Registry = StoreRegistry{}

// Load reads the registry (empty when absent).
func (r StoreRegistry) Load(ctx context.Context) (*snapshot.ClusterRegistry, error) {
	reg, _, err := snapshot.LoadClusterRegistry(ctx, r.Store)
	return reg, err
}

// Set registers dc or changes whether it is critical; already so is fine.
func (r StoreRegistry) Set(ctx context.Context, dc string, critical bool) error {
	_, err := snapshot.UpdateClusterRegistry(ctx, r.Store, func(c *snapshot.ClusterRegistry) error { return c.Set(dc, critical) })
	return err
}

// Remove drops dc; not registered is fine.
func (r StoreRegistry) Remove(ctx context.Context, dc string) error {
	_, err := snapshot.UpdateClusterRegistry(ctx, r.Store, func(c *snapshot.ClusterRegistry) error { return c.Remove(dc) })
	return err
}

// registered says whether reg lists dc and whether as critical.
func registered(reg *snapshot.ClusterRegistry, dc string) (known, critical bool) {
	for _, c := range reg.Clusters {
		if c.Name == dc {
			return true, c.Critical
		}
	}
	return false, false
}

// dcServers are the topology's servers of dc, and whether it has views
// (a cluster; a DC of log voters only is a witness for the quorum).
func (p *Procedures) dcServers(dc string) (servers []topology.Server, cluster bool) {
	for _, s := range p.Servers {
		if s.DC == dc {
			servers = append(servers, s)
			cluster = cluster || s.Role == topology.RoleView
		}
	}
	return servers, cluster
}

// only is st as ApplyPlan restricted to dc must see it: dc's Status alone,
// and only the log members among servers, so that no other DC's voter
// looks like a member to remove.
func (s *State) only(dc string, servers []topology.Server) *State {
	r := &State{LogAvailable: s.LogAvailable, LogErr: s.LogErr, DCs: map[string]*apipb.StatusResponse{}, Unanswered: map[string]error{}}
	if st, ok := s.DCs[dc]; ok {
		r.DCs[dc] = st
	}
	if err, ok := s.Unanswered[dc]; ok {
		r.Unanswered[dc] = err
	}
	if s.Log != nil {
		r.Log = proto.Clone(s.Log).(*logpb.InfoResponse)
		r.Log.Members = slices.DeleteFunc(r.Log.Members, func(m *logpb.Member) bool {
			return !slices.ContainsFunc(servers, func(sv topology.Server) bool { return sv.Role == topology.RoleLog && sv.Name == m.Id })
		})
	}
	return r
}

// AddDCPlan provisions dc, which the topology lists, for a running
// database whose log prefix may long be discarded:
//
//  1. dc is registered in the cluster registry, not critical: the registry
//     knows it while the truncation coordinator does not wait for it yet;
//  2. ApplyPlan restricted to dc: its log voters (if the file lists any)
//     join empty as voters and catch up; its API servers start; its views
//     start on empty data dirs, so each boots from the bucket's checkpoints
//     and replays the log's tail (or the archive), never from another DC's
//     servers, and is published and waited for until up to date;
//  3. once dc is fully available it is marked critical: from then on the
//     coordinator discards the log's prefix only below what dc's own
//     checkpoints cover. Critical earlier would only stall truncation (a
//     cluster with no checkpoint allows no discard) while protecting
//     nothing: views still booting replay from the archive anyway.
//
// dc registered critical and fully available: nothing to do (starting a
// missing replica of an available DC is cluster apply's). A rerun after an
// interruption continues, every step being idempotent.
func (p *Procedures) AddDCPlan(ctx context.Context, st *State, reg Registry, dc string) (*Plan, error) {
	servers, cluster := p.dcServers(dc)
	if len(servers) == 0 {
		return nil, fmt.Errorf("%w: %s (add it to the file first)", ErrNoSuchDC, dc)
	}
	plan := &Plan{Title: "add datacenter " + dc}
	known, critical := false, false
	if cluster {
		r, err := reg.Load(ctx)
		if err != nil {
			return nil, fmt.Errorf("cluster registry: %w", err)
		}
		known, critical = registered(r, dc)
		if critical && st.FullyAvailable(dc) {
			plan.Title += " (registered critical and fully available)"
			return plan, nil
		}
	}
	if cluster && !known {
		plan.Steps = append(plan.Steps, Step{
			What: fmt.Sprintf("register %s in the cluster registry, not critical yet (the truncation coordinator does not wait for it)", dc),
			Do:   func(ctx context.Context) error { return reg.Set(ctx, dc, false) },
		})
	}
	sub := *p
	sub.Servers = servers
	apply, err := sub.ApplyPlan(ctx, st.only(dc, servers))
	if err != nil {
		return nil, err
	}
	plan.Steps = append(plan.Steps, apply.Steps...)
	if cluster {
		what := fmt.Sprintf("wait until %s is fully available", dc)
		if !critical {
			what += ", then mark it critical in the cluster registry"
		}
		plan.Steps = append(plan.Steps, Step{What: what, Do: func(ctx context.Context) error {
			err := waitFor(ctx, p.Obs, p.poll(), p.wait(), func(st *State) (bool, string) {
				if st.FullyAvailable(dc) {
					return true, ""
				}
				if st.DCs[dc] == nil {
					return false, fmt.Sprintf("no API server of %s answered: %v", dc, st.Unanswered[dc])
				}
				return false, fmt.Sprintf("%s is not fully available: %s", dc, strings.Join(st.DCs[dc].GetFullyAvailable().GetMissing(), "; "))
			})
			if err != nil || critical {
				return err
			}
			return reg.Set(ctx, dc, true)
		}})
	}
	return plan, nil
}

// RemoveDCPlan retires dc, in this order:
//
//  1. dc is marked non-critical in the cluster registry before anything
//     else, so the truncation coordinator stops counting on its
//     checkpoints before its views go;
//  2. its API servers stop: from then on no client is served in dc, and
//     its clients go to the other DCs (their DNS records in the cloud);
//  3. its views are unpublished, stopped and wiped. CheckStopView's rule
//     (never the last up-to-date view of a point of a fully available DC)
//     protects a DC's clients while the DC serves; a DC being retired
//     serves none once step 2 is done, so this step's gate is instead that
//     no API server of dc answers any more;
//  4. its log voters leave the Raft configuration one at a time
//     (leadership moved away first), each gated by CheckStopLog so the
//     rest keep a quorum, and are stopped and wiped;
//  5. dc is dropped from the registry. The operator then deletes it from
//     the topology file: while the file lists it, cluster apply (or
//     add-dc) would provision it again.
//
// Refused up front: a DC the file does not list, the last DC with views,
// and a removal that would leave the registry with no critical cluster
// (the coordinator would stop truncating). Steps 1 and 2 are gated on
// another DC being fully available. The plan covers what runs and what
// the log and the registry still hold; while dc is registered every stop
// and wipe is planned again (all idempotent), so the registry entry, gone
// last, marks a removal as complete.
func (p *Procedures) RemoveDCPlan(ctx context.Context, st *State, reg Registry, dc string) (*Plan, error) {
	servers, cluster := p.dcServers(dc)
	if len(servers) == 0 {
		return nil, fmt.Errorf("%w: %s (a DC already deleted from the file cannot be retired by it: put it back, run remove-dc, then delete it)", ErrNoSuchDC, dc)
	}
	var others []string
	for _, d := range p.dcs() {
		if _, c := p.dcServers(d); c && d != dc {
			others = append(others, d)
		}
	}
	if cluster && len(others) == 0 {
		return nil, refuse("%s is the database's last datacenter with views: removing it would leave no cluster", dc)
	}
	r, err := reg.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster registry: %w", err)
	}
	known, critical := registered(r, dc)
	if critical && len(r.Critical()) == 1 {
		return nil, refuse("%s is the registry's only critical cluster: without it the truncation coordinator stops; mark another critical first (akutan backup clusters set DC)", dc)
	}
	othersAvailable := func(_ context.Context, st *State) error {
		for _, o := range others {
			if st.FullyAvailable(o) {
				return nil
			}
		}
		return refuse("no other datacenter (%s) is fully available: retiring %s would leave its clients nowhere to go", strings.Join(others, ", "), dc)
	}
	dark := func(_ context.Context, st *State) error {
		if st.DCs[dc] != nil {
			return refuse("an API server of %s still answers, so its clients may still read these views", dc)
		}
		return nil
	}
	plan := &Plan{Title: "remove datacenter " + dc}
	if critical {
		plan.Steps = append(plan.Steps, Step{
			What:  fmt.Sprintf("mark %s non-critical in the cluster registry (the truncation coordinator stops counting on its checkpoints)", dc),
			Check: othersAvailable,
			Do:    func(ctx context.Context) error { return reg.Set(ctx, dc, false) },
		})
	}
	for _, s := range servers {
		if s.Role != topology.RoleAPI {
			continue
		}
		apis, err := p.retiring(ctx, s, known)
		if err != nil {
			return nil, err
		}
		for _, a := range apis {
			plan.Steps = append(plan.Steps, Step{
				What:  fmt.Sprintf("stop API server %s (%s's clients go to the other DCs)", a.Name, dc),
				Check: othersAvailable,
				Do:    func(ctx context.Context) error { return p.Driver.Stop(ctx, a.Name) },
			})
		}
	}
	for _, s := range servers {
		if s.Role != topology.RoleView {
			continue
		}
		views, err := p.retiring(ctx, s, known)
		if err != nil {
			return nil, err
		}
		for _, v := range views {
			plan.Steps = append(plan.Steps, Step{
				What:  fmt.Sprintf("retire view %s (%s %v): unpublish from %s's views, stop, wipe its data dir", v.Name, s.Space, s.Range, dc),
				Check: dark,
				Do: func(ctx context.Context) error {
					if err := p.Driver.PublishView(ctx, dc, v.Addr, false); err != nil {
						return err
					}
					if err := p.Driver.Stop(ctx, v.Name); err != nil {
						return err
					}
					return p.Driver.Wipe(ctx, v.Name)
				},
			})
		}
	}
	for _, s := range servers {
		if s.Role != topology.RoleLog {
			continue
		}
		member := st.member(s.Name) != nil
		up, err := p.Driver.Running(ctx, s.Name)
		if err != nil {
			return nil, err
		}
		if !member && !up && !known {
			continue
		}
		name := s.Name
		what := fmt.Sprintf("stop log voter %s and wipe its disk", name)
		if member {
			what = fmt.Sprintf("remove log voter %s from the Raft configuration, stop it, wipe its disk", name)
			plan.Steps = append(plan.Steps, Step{
				What: fmt.Sprintf("move the log's leadership away from %s if it leads", name),
				Do:   func(ctx context.Context) error { return p.moveLeadership(ctx, name) },
			})
		}
		plan.Steps = append(plan.Steps, Step{
			What:  what,
			Check: func(_ context.Context, st *State) error { return st.CheckStopLog(name, true) },
			Do: func(ctx context.Context) error {
				if member {
					if _, err := p.Admin.RemoveServer(ctx, name); err != nil {
						return fmt.Errorf("remove %s: %w", name, err)
					}
				}
				if err := p.Driver.Stop(ctx, name); err != nil {
					return err
				}
				return p.Driver.Wipe(ctx, name)
			},
		})
	}
	if known {
		plan.Steps = append(plan.Steps, Step{
			What: fmt.Sprintf("remove %s from the cluster registry", dc),
			Do:   func(ctx context.Context) error { return reg.Remove(ctx, dc) },
		})
	}
	return plan, nil
}

// retiring are the servers remove-dc stops for s: s when it runs, or while
// its DC is still registered (the removal unfinished: stop and wipe again,
// both idempotent); and the temporary twin of s an interrupted procedure
// left running.
func (p *Procedures) retiring(ctx context.Context, s topology.Server, registered bool) ([]topology.Server, error) {
	var out []topology.Server
	for i, x := range []topology.Server{s, p.Driver.Temporary(s)} {
		up, err := p.Driver.Running(ctx, x.Name)
		if err != nil {
			return nil, err
		}
		if up || (i == 0 && registered) {
			out = append(out, x)
		}
	}
	return out, nil
}
