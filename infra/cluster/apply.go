package cluster

import (
	"context"
	"fmt"

	"github.com/akutan/akutan/infra/topology"
)

// ApplyPlan reconciles the running database toward the topology, from one
// observation st and the driver's view of which servers run:
//
//  1. a log voter that is not a member of the Raft configuration is wiped,
//     started empty and added as a voter; one that is a member but not
//     running is started; each is waited for until it catches up;
//  2. an API server that is not running is started and waited for until it
//     answers (its DC may not be fully available yet: its views come next);
//  3. a view that is not running is started (an empty data dir boots from
//     the bucket), published, and waited for until up to date; a running
//     view its DC does not list is published;
//  4. only then are the extras retired, each behind its gate: a view a DC
//     lists that the topology does not (a temporary twin left by an
//     interrupted procedure) is unpublished, and stopped and wiped when it
//     is a twin this driver starts; a log member the topology does not list
//     is removed from the Raft configuration.
//
// The plan is computed afresh on every run, so an interrupted apply is
// continued by running it again; with nothing to do the plan is empty.
func (p *Procedures) ApplyPlan(ctx context.Context, st *State) (*Plan, error) {
	plan := &Plan{Title: "apply the topology"}
	running := func(name string) (bool, error) { return p.Driver.Running(ctx, name) }
	inTopology := map[string]bool{}
	for _, s := range p.Servers {
		inTopology[s.Name] = true
		inTopology[s.DC+"/"+s.Addr] = true
	}
	var views []Step
	for _, s := range p.Servers {
		up, err := running(s.Name)
		if err != nil {
			return nil, err
		}
		switch s.Role {
		case topology.RoleLog:
			if st.Log != nil && st.member(s.Name) == nil {
				plan.Steps = append(plan.Steps, p.joinSteps(s)...)
			} else if !up {
				plan.Steps = append(plan.Steps, p.startStep(s, "start log voter "+s.Name+" and wait until it catches up",
					func(ctx context.Context) error { return p.waitLog(ctx, s.Name) }))
			}
		case topology.RoleView:
			// A DC whose API servers did not answer lists nothing: its
			// running views are left as they are.
			listed := st.DCs[s.DC] == nil || st.View(s.DC, s.Addr) != nil
			if !up || !listed {
				what := fmt.Sprintf("start view %s (%s %v in %s), publish it, wait until it is up to date", s.Name, s.Space, s.Range, s.DC)
				if up {
					what = fmt.Sprintf("publish view %s in %s and wait until it is up to date", s.Name, s.DC)
				}
				views = append(views, p.startStep(s, what, func(ctx context.Context) error {
					if err := p.Driver.PublishView(ctx, s.DC, s.Addr, true); err != nil {
						return err
					}
					return p.waitView(ctx, s.Name, s.DC, s.Addr)
				}))
			}
		case topology.RoleAPI:
			if !up {
				plan.Steps = append(plan.Steps, p.startStep(s, "start API server "+s.Name+" and wait until it answers",
					func(ctx context.Context) error { return p.waitAnswer(ctx, s.Name, s.Addr, false) }))
			}
		}
	}
	plan.Steps = append(plan.Steps, views...)
	for _, dc := range p.dcs() {
		for _, v := range st.DCs[dc].GetViews() {
			if inTopology[dc+"/"+v.Address] {
				continue
			}
			dc, addr := dc, v.Address
			tmp, known := p.twinAt(dc, addr)
			what := fmt.Sprintf("retire view %s from %s's views (not in the topology)", addr, dc)
			if known {
				what = fmt.Sprintf("retire temporary view %s (%s): unpublish, stop, wipe", tmp.Name, addr)
			}
			plan.Steps = append(plan.Steps, Step{
				What:  what,
				Check: func(_ context.Context, st *State) error { return st.CheckStopView(dc, addr) },
				Do: func(ctx context.Context) error {
					if err := p.retireView(ctx, dc, addr); err != nil || !known {
						return err
					}
					if err := p.Driver.Stop(ctx, tmp.Name); err != nil {
						return err
					}
					return p.Driver.Wipe(ctx, tmp.Name)
				},
			})
		}
	}
	for _, m := range st.Log.GetMembers() {
		if inTopology[m.Id] {
			continue
		}
		id := m.Id
		plan.Steps = append(plan.Steps, Step{
			What:  fmt.Sprintf("remove log member %s (not in the topology) from the Raft configuration", id),
			Check: func(_ context.Context, st *State) error { return st.CheckStopLog(id, true) },
			Do: func(ctx context.Context) error {
				_, err := p.Admin.RemoveServer(ctx, id)
				return err
			},
		})
	}
	return plan, nil
}

// startStep starts s and then waits with wait.
func (p *Procedures) startStep(s topology.Server, what string, wait func(context.Context) error) Step {
	return Step{What: what, Do: func(ctx context.Context) error {
		if err := p.Driver.Start(ctx, s.Name); err != nil {
			return err
		}
		return wait(ctx)
	}}
}

// joinSteps makes s, which is not a member, a caught-up voter on an empty
// disk.
func (p *Procedures) joinSteps(s topology.Server) []Step {
	return []Step{{
		What: fmt.Sprintf("log voter %s is not a member: stop it, wipe its disk, start it empty, add it as a voter, wait until it catches up", s.Name),
		Do: func(ctx context.Context) error {
			for _, f := range []func(context.Context, string) error{p.Driver.Stop, p.Driver.Wipe, p.Driver.Join} {
				if err := f(ctx, s.Name); err != nil {
					return err
				}
			}
			if _, err := p.Admin.AddVoter(ctx, s.Name, s.Raft, s.Addr); err != nil {
				return fmt.Errorf("add voter %s: %w", s.Name, err)
			}
			return p.waitLog(ctx, s.Name)
		},
	}}
}

// twinAt is the temporary twin the driver would start at addr in dc.
func (p *Procedures) twinAt(dc, addr string) (topology.Server, bool) {
	for _, s := range p.Servers {
		if s.DC == dc && s.Role == topology.RoleView {
			if tmp := p.Driver.Temporary(s); tmp.Addr == addr {
				return tmp, true
			}
		}
	}
	return topology.Server{}, false
}
