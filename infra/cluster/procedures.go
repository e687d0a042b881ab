package cluster

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/akutan/akutan/infra/topology"
	"github.com/akutan/akutan/proto/logpb"
)

// logAdmin is what the procedures need of the log's administrative client
// (logclient.Admin).
type logAdmin interface {
	Info(ctx context.Context, req *logpb.InfoRequest) (*logpb.InfoResponse, error)
	AddVoter(ctx context.Context, id, raftAddr, grpcAddr string) (*logpb.MembershipResponse, error)
	RemoveServer(ctx context.Context, id string) (*logpb.MembershipResponse, error)
	TransferLeader(ctx context.Context, id string) (*logpb.MembershipResponse, error)
}

// Procedures builds the plans of the operator procedures over one
// topology, one driver and one observer.
type Procedures struct {
	Servers []topology.Server
	Driver  Driver
	Obs     *Observer
	Admin   logAdmin
	// Out receives what the waits report (how long a view took to be up to
	// date).
	Out io.Writer
	// Wait bounds each wait (default 3 minutes); Poll is how often a wait
	// observes (default 250 ms).
	Wait, Poll time.Duration
}

func (p *Procedures) wait() time.Duration {
	if p.Wait > 0 {
		return p.Wait
	}
	return 3 * time.Minute
}

func (p *Procedures) poll() time.Duration {
	if p.Poll > 0 {
		return p.Poll
	}
	return 250 * time.Millisecond
}

// Server is the topology's server name.
func (p *Procedures) Server(name string) (topology.Server, bool) {
	for _, s := range p.Servers {
		if s.Name == name {
			return s, true
		}
	}
	return topology.Server{}, false
}

// RestartPlan is a rolling restart of the servers of dc (every DC when
// empty) with role (every role when empty): log voters one at a time,
// leadership moved away first; then each DC's views and API servers, each
// through a temporary twin while it is its range's (or its DC's) only one.
func (p *Procedures) RestartPlan(dc string, role topology.Role) *Plan {
	title := "rolling restart"
	if role != "" {
		title += " of " + string(role) + " servers"
	}
	if dc != "" {
		title += " in " + dc
	}
	plan := &Plan{Title: title}
	pick := func(s topology.Server, r topology.Role) bool {
		return s.Role == r && (role == "" || role == r) && (dc == "" || s.DC == dc)
	}
	for _, s := range p.Servers {
		if pick(s, topology.RoleLog) {
			plan.Steps = append(plan.Steps, p.logSteps(s, false, nil)...)
		}
	}
	for _, d := range p.dcs() {
		for _, s := range p.Servers {
			if s.DC == d && pick(s, topology.RoleView) {
				plan.Steps = append(plan.Steps, p.viewSteps(s, false, nil)...)
			}
		}
		for _, s := range p.Servers {
			if s.DC == d && pick(s, topology.RoleAPI) {
				plan.Steps = append(plan.Steps, p.apiSteps(s, false, nil)...)
			}
		}
	}
	return plan
}

// ReplacePlan recovers the failed server name: a view is rebuilt from the
// bucket on a wiped data dir (a temporary twin keeping its range covered
// meanwhile), a log voter is removed, wiped, started empty and added back
// as a voter, an API server is started again.
func (p *Procedures) ReplacePlan(name string) (*Plan, error) {
	s, ok := p.Server(name)
	if !ok {
		return nil, fmt.Errorf("the topology has no server %q", name)
	}
	plan := &Plan{Title: "replace " + name}
	switch s.Role {
	case topology.RoleLog:
		plan.Steps = p.logSteps(s, true, nil)
	case topology.RoleView:
		plan.Steps = p.viewSteps(s, true, nil)
	case topology.RoleAPI:
		plan.Steps = p.apiSteps(s, true, nil)
	}
	return plan, nil
}

func (p *Procedures) dcs() []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range p.Servers {
		if !seen[s.DC] {
			seen[s.DC] = true
			out = append(out, s.DC)
		}
	}
	return out
}

// twins counts the topology's views of s's DC, space and range, s
// included.
func (p *Procedures) twins(s topology.Server) int {
	n := 0
	for _, o := range p.Servers {
		if o.Role == topology.RoleView && o.DC == s.DC && o.Space == s.Space && o.Range == s.Range {
			n++
		}
	}
	return n
}

// logSteps restarts (or, with replace, replaces) the log voter s; with
// bins (an upgrade) it restarts it on them and waits for their build.
func (p *Procedures) logSteps(s topology.Server, replace bool, bins *Binaries) []Step {
	name := s.Name
	steps := []Step{{
		What: fmt.Sprintf("move the log's leadership away from %s if it leads", name),
		Do:   func(ctx context.Context) error { return p.moveLeadership(ctx, name) },
	}}
	if !replace {
		return append(steps,
			Step{
				What:  fmt.Sprintf("stop log voter %s (the other voters keep the quorum)", name),
				Check: func(_ context.Context, st *State) error { return st.CheckStopLog(name, false) },
				Do:    func(ctx context.Context) error { return p.Driver.Stop(ctx, name) },
			},
			Step{
				What: pick(bins, fmt.Sprintf("start %s and wait until it rejoins and catches up", name),
					fmt.Sprintf("start %s on the --bin binaries, wait until it rejoins, catches up and reports their build", name)),
				Do: func(ctx context.Context) error {
					if err := p.useBinaries(ctx, name, bins); err != nil {
						return err
					}
					if err := p.Driver.Start(ctx, name); err != nil {
						return err
					}
					if err := p.waitLog(ctx, name); err != nil {
						return err
					}
					return p.waitBuild(ctx, name, bins, topology.RoleLog, func(_ context.Context, st *State) string { return st.member(name).GetBuild() })
				},
			})
	}
	return append(steps,
		Step{
			What:  fmt.Sprintf("stop %s and remove it from the Raft configuration", name),
			Check: func(_ context.Context, st *State) error { return st.CheckStopLog(name, true) },
			Do: func(ctx context.Context) error {
				if err := p.Driver.Stop(ctx, name); err != nil {
					return err
				}
				_, err := p.Admin.RemoveServer(ctx, name)
				return err
			},
		},
		Step{
			What: fmt.Sprintf("wipe %s's disk", name),
			Do:   func(ctx context.Context) error { return p.Driver.Wipe(ctx, name) },
		},
		Step{
			What: fmt.Sprintf("start %s on the empty disk, add it as a voter (raft %s), wait until it catches up", name, s.Raft),
			Do: func(ctx context.Context) error {
				if err := p.Driver.Join(ctx, name); err != nil {
					return err
				}
				if _, err := p.Admin.AddVoter(ctx, name, s.Raft, s.Addr); err != nil {
					return fmt.Errorf("add voter %s: %w", name, err)
				}
				return p.waitLog(ctx, name)
			},
		})
}

// moveLeadership transfers leadership away from name when it leads and
// waits until another voter does.
func (p *Procedures) moveLeadership(ctx context.Context, name string) error {
	st, err := p.Obs.Observe(ctx)
	if err != nil {
		return err
	}
	if st.Log.GetLeaderId() != name {
		p.printf("      %s does not lead (leader %s)\n", name, st.Log.GetLeaderId())
		return nil
	}
	if _, err := p.Admin.TransferLeader(ctx, ""); err != nil {
		return fmt.Errorf("transfer leadership: %w", err)
	}
	return waitFor(ctx, p.Obs, p.poll(), p.wait(), func(st *State) (bool, string) {
		l := st.Log.GetLeaderId()
		if st.LogAvailable && l != "" && l != name {
			p.printf("      leader now %s\n", l)
			return true, ""
		}
		return false, fmt.Sprintf("leader %q", l)
	})
}

// waitLog waits until the voter name answers and has applied the log's
// last index as observed when the wait began.
func (p *Procedures) waitLog(ctx context.Context, name string) error {
	start := time.Now()
	var target uint64
	return waitFor(ctx, p.Obs, p.poll(), p.wait(), func(st *State) (bool, string) {
		if !st.LogAvailable {
			return false, fmt.Sprintf("log not available: %v", st.LogErr)
		}
		if target == 0 {
			target = st.Log.GetLastIndex()
		}
		m := st.member(name)
		if m == nil {
			return false, name + " is not a member"
		}
		if !m.Voter {
			return false, name + " is not a voter yet"
		}
		if !caughtUp(m, target) {
			return false, fmt.Sprintf("%s applied %d of %d (%s)", name, m.AppliedIndex, target, m.Error)
		}
		p.printf("      %s caught up after %.1fs (applied %d >= %d)\n", name, time.Since(start).Seconds(), m.AppliedIndex, target)
		return true, ""
	})
}

// viewSteps restarts (or, with replace, rebuilds from the bucket) the view
// s, through a temporary twin when s is its range's only view in its DC.
// With bins (an upgrade, with replace) the twin and the rebuilt view run
// on them, and the view is waited for until it reports their build.
func (p *Procedures) viewSteps(s topology.Server, replace bool, bins *Binaries) []Step {
	var steps []Step
	var tmp topology.Server
	single := p.twins(s) == 1
	if single {
		tmp = p.Driver.Temporary(s)
		steps = append(steps,
			Step{
				What: fmt.Sprintf("start temporary view %s at %s%s (%s %v in %s; boots from the bucket) and publish it", tmp.Name, tmp.Addr, pick(bins, "", " on the --bin binaries"), s.Space, s.Range, s.DC),
				Do: func(ctx context.Context) error {
					if err := p.useBinaries(ctx, tmp.Name, bins); err != nil {
						return err
					}
					if err := p.Driver.StartTemporary(ctx, tmp, s); err != nil {
						return err
					}
					return p.Driver.PublishView(ctx, s.DC, tmp.Addr, true)
				},
			},
			Step{
				What: fmt.Sprintf("wait until %s is up to date", tmp.Name),
				Do:   func(ctx context.Context) error { return p.waitView(ctx, tmp.Name, s.DC, tmp.Addr) },
			})
	}
	action := "restart " + s.Name
	switch {
	case bins != nil:
		action = fmt.Sprintf("stop %s, delete its state, start it on the --bin binaries (boots from the bucket)", s.Name)
	case replace:
		action = fmt.Sprintf("stop %s, wipe its data dir, start it (boots from the bucket)", s.Name)
	}
	steps = append(steps,
		Step{
			What:  fmt.Sprintf("retire %s (%s) from %s's views", s.Name, s.Addr, s.DC),
			Check: func(_ context.Context, st *State) error { return st.CheckStopView(s.DC, s.Addr) },
			Do:    func(ctx context.Context) error { return p.retireView(ctx, s.DC, s.Addr) },
		},
		Step{
			What: action,
			Do: func(ctx context.Context) error {
				if err := p.Driver.Stop(ctx, s.Name); err != nil {
					return err
				}
				if replace {
					if err := p.Driver.Wipe(ctx, s.Name); err != nil {
						return err
					}
				}
				if err := p.useBinaries(ctx, s.Name, bins); err != nil {
					return err
				}
				return p.Driver.Start(ctx, s.Name)
			},
		},
		Step{
			What: pick(bins, fmt.Sprintf("publish %s again and wait until it is up to date", s.Name),
				fmt.Sprintf("publish %s again, wait until it is up to date and reports their build", s.Name)),
			Do: func(ctx context.Context) error {
				if err := p.Driver.PublishView(ctx, s.DC, s.Addr, true); err != nil {
					return err
				}
				if err := p.waitView(ctx, s.Name, s.DC, s.Addr); err != nil {
					return err
				}
				return p.waitBuild(ctx, s.Name, bins, topology.RoleView, func(_ context.Context, st *State) string { return st.View(s.DC, s.Addr).GetBuild() })
			},
		})
	if single {
		steps = append(steps, p.retireTwinStep(s, tmp))
	}
	return steps
}

// retireTwinStep retires the temporary view tmp of s: unpublished behind
// the view gate, stopped, wiped.
func (p *Procedures) retireTwinStep(s, tmp topology.Server) Step {
	return Step{
		What:  fmt.Sprintf("retire temporary view %s: unpublish, stop, wipe", tmp.Name),
		Check: func(_ context.Context, st *State) error { return st.CheckStopView(s.DC, tmp.Addr) },
		Do: func(ctx context.Context) error {
			if err := p.retireView(ctx, s.DC, tmp.Addr); err != nil {
				return err
			}
			if err := p.Driver.Stop(ctx, tmp.Name); err != nil {
				return err
			}
			return p.Driver.Wipe(ctx, tmp.Name)
		},
	}
}

// waitView waits until dc's API servers list the view at addr as up to
// date, having applied at least the log's last index when the wait began.
func (p *Procedures) waitView(ctx context.Context, name, dc, addr string) error {
	start := time.Now()
	var target uint64
	return waitFor(ctx, p.Obs, p.poll(), p.wait(), func(st *State) (bool, string) {
		if target == 0 {
			target = st.Log.GetLastIndex()
		}
		v := st.View(dc, addr)
		switch {
		case v == nil:
			return false, fmt.Sprintf("%s's API servers do not list %s yet", dc, addr)
		case !v.UpToDate || v.LastApplied < target:
			return false, fmt.Sprintf("%s is %s, applied %d of %d %s", name, v.State, v.LastApplied, target, v.Error)
		}
		p.printf("      %s up to date after %.1fs (applied %d >= %d)\n", name, time.Since(start).Seconds(), v.LastApplied, target)
		return true, ""
	})
}

// retireView removes the view at addr from dc's views and waits (briefly)
// until dc's API servers no longer list it, so no new lookup goes to it.
func (p *Procedures) retireView(ctx context.Context, dc, addr string) error {
	if err := p.Driver.PublishView(ctx, dc, addr, false); err != nil {
		return err
	}
	err := waitFor(ctx, p.Obs, p.poll(), 15*time.Second, func(st *State) (bool, string) {
		if st.DCs[dc] != nil && st.View(dc, addr) == nil {
			return true, ""
		}
		return false, fmt.Sprintf("%s's API servers still list %s", dc, addr)
	})
	if err != nil {
		p.printf("      going on: %v\n", err) // a stale list only costs a retried lookup
	}
	return nil
}

// apiSteps restarts (or replaces) the API server s: in place when its DC
// has another, else with a temporary one serving meanwhile. With bins (an
// upgrade) both run on them, and s is waited for until it reports their
// build.
func (p *Procedures) apiSteps(s topology.Server, replace bool, bins *Binaries) []Step {
	others := 0
	for _, o := range p.Servers {
		if o.Role == topology.RoleAPI && o.DC == s.DC && o.Name != s.Name {
			others++
		}
	}
	verb := "restart"
	if replace {
		verb = "start again"
	}
	restart := Step{
		What: pick(bins, fmt.Sprintf("%s API server %s and wait until it answers", verb, s.Name),
			fmt.Sprintf("restart API server %s on the --bin binaries, wait until it answers with their build", s.Name)),
		Do: func(ctx context.Context) error {
			if err := p.Driver.Stop(ctx, s.Name); err != nil {
				return err
			}
			if err := p.useBinaries(ctx, s.Name, bins); err != nil {
				return err
			}
			if err := p.Driver.Start(ctx, s.Name); err != nil {
				return err
			}
			if err := p.waitAPI(ctx, s.Name, s.Addr); err != nil {
				return err
			}
			return p.waitBuild(ctx, s.Name, bins, topology.RoleAPI, p.apiBuild(s.Addr))
		},
	}
	if others > 0 {
		restart.Check = func(_ context.Context, st *State) error { return st.CheckStopAPI(s.DC, s.Addr) }
		return []Step{restart}
	}
	tmp := p.Driver.Temporary(s)
	restart.Check = func(ctx context.Context, st *State) error {
		if _, err := p.Obs.APIStatus(ctx, tmp.Addr); err != nil {
			return refuse("the temporary API server %s does not answer (%v), and %s is %s's only one", tmp.Addr, err, s.Name, s.DC)
		}
		return nil
	}
	return []Step{
		{
			What: fmt.Sprintf("start temporary API server %s at %s in %s%s and wait until it answers", tmp.Name, tmp.Addr, s.DC, pick(bins, "", " on the --bin binaries")),
			Do: func(ctx context.Context) error {
				if err := p.useBinaries(ctx, tmp.Name, bins); err != nil {
					return err
				}
				if err := p.Driver.StartTemporary(ctx, tmp, s); err != nil {
					return err
				}
				p.Obs.AskAlso(s.DC, tmp.Addr, true)
				return p.waitAPI(ctx, tmp.Name, tmp.Addr)
			},
		},
		restart,
		p.stopTmpAPIStep(s, tmp),
	}
}

// stopTmpAPIStep stops the temporary API server tmp of s.
func (p *Procedures) stopTmpAPIStep(s, tmp topology.Server) Step {
	return Step{
		What: "stop temporary API server " + tmp.Name,
		Do: func(ctx context.Context) error {
			p.Obs.AskAlso(s.DC, tmp.Addr, false)
			return p.Driver.Stop(ctx, tmp.Name)
		},
	}
}

// pick is plain without binaries, upgrade with them: a step's words.
func pick(bins *Binaries, plain, upgrade string) string {
	if bins != nil {
		return upgrade
	}
	return plain
}

// waitAPI waits until the API server at addr answers Status and judges
// its DC fully available.
func (p *Procedures) waitAPI(ctx context.Context, name, addr string) error {
	return p.waitAnswer(ctx, name, addr, true)
}

// waitAnswer waits until the API server at addr answers Status and, with
// available, judges its DC fully available.
func (p *Procedures) waitAnswer(ctx context.Context, name, addr string, available bool) error {
	start := time.Now()
	return waitFor(ctx, p.Obs, p.poll(), p.wait(), func(*State) (bool, string) {
		st, err := p.Obs.APIStatus(ctx, addr)
		if err != nil {
			return false, fmt.Sprintf("%s: %v", name, err)
		}
		if available && !st.GetFullyAvailable().GetOk() {
			return false, fmt.Sprintf("%s answers, its DC not fully available yet: %v", name, st.GetFullyAvailable().GetMissing())
		}
		p.printf("      %s answers after %.1fs\n", name, time.Since(start).Seconds())
		return true, ""
	})
}

func (p *Procedures) printf(format string, args ...any) {
	if p.Out != nil {
		fmt.Fprintf(p.Out, format, args...)
	}
}
