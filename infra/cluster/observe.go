package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/akutan/akutan/infra/health"
	"github.com/akutan/akutan/infra/topology"
	"github.com/akutan/akutan/logsvc/logclient"
	"github.com/akutan/akutan/proto/apipb"
	"github.com/akutan/akutan/proto/logpb"
)

// State is one observation of the running database: the log as its
// replicas describe it, and each datacenter as one of its API servers
// judges it. Nothing in it is remembered from an earlier observation.
type State struct {
	// Log is the log's Info (linearizable when LogAvailable); nil when no
	// replica answered.
	Log          *logpb.InfoResponse
	LogAvailable bool
	LogErr       error
	// DCs is each datacenter's Status, by name; a DC whose API servers
	// all failed to answer is in Unanswered instead.
	DCs        map[string]*apipb.StatusResponse
	Unanswered map[string]error
}

// Observer gathers a State through the API servers' Status and the log's
// Info. Safe for concurrent use.
type Observer struct {
	servers []topology.Server
	admin   *logclient.Admin
	conns   logclient.ConnPool

	mu    sync.Mutex
	extra map[string][]string // DC -> API servers to ask after the topology's
}

// NewObserver returns an Observer of the servers a topology lists.
func NewObserver(servers []topology.Server) *Observer {
	var logs []string
	for _, s := range servers {
		if s.Role == topology.RoleLog {
			logs = append(logs, s.Addr)
		}
	}
	return &Observer{servers: servers, admin: logclient.NewAdmin(logs), extra: map[string][]string{}}
}

// Close releases the connections.
func (o *Observer) Close() { o.admin.Close(); o.conns.Close() }

// Admin is the log's administrative client the Observer uses.
func (o *Observer) Admin() *logclient.Admin { return o.admin }

// AskAlso makes Observe ask the API server at addr for dc too, after the
// topology's (a temporary API server while the DC's own restarts); with
// add false it stops.
func (o *Observer) AskAlso(dc, addr string, add bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	list := o.extra[dc][:0:0]
	for _, a := range o.extra[dc] {
		if a != addr {
			list = append(list, a)
		}
	}
	if add {
		list = append(list, addr)
	}
	o.extra[dc] = list
}

// Observe gathers the log's Info and every DC's Status.
func (o *Observer) Observe(ctx context.Context) (*State, error) {
	st := &State{DCs: map[string]*apipb.StatusResponse{}, Unanswered: map[string]error{}}
	info, err := o.admin.Info(ctx, &logpb.InfoRequest{Linearizable: true})
	if err == nil {
		st.Log, st.LogAvailable = info, true
	} else {
		st.LogErr = err
		st.Log, _ = o.admin.Info(ctx, &logpb.InfoRequest{})
	}
	for _, dc := range o.dcs() {
		var errs []error
		for _, addr := range o.apis(dc) {
			resp, err := o.APIStatus(ctx, addr)
			if err == nil {
				st.DCs[dc] = resp
				break
			}
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
		}
		if st.DCs[dc] == nil {
			st.Unanswered[dc] = errors.Join(errs...)
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return st, nil
}

// APIStatus asks one API server for its DC's Status.
func (o *Observer) APIStatus(ctx context.Context, addr string) (*apipb.StatusResponse, error) {
	cc, err := o.conns.Get(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	defer cancel()
	return apipb.NewAkutanClient(cc).Status(ctx, &apipb.StatusRequest{})
}

// dcs are the DCs with API servers, in topology order.
func (o *Observer) dcs() []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range o.servers {
		if s.Role == topology.RoleAPI && !seen[s.DC] {
			seen[s.DC] = true
			out = append(out, s.DC)
		}
	}
	return out
}

func (o *Observer) apis(dc string) []string {
	var out []string
	for _, s := range o.servers {
		if s.Role == topology.RoleAPI && s.DC == dc {
			out = append(out, s.Addr)
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return append(out, o.extra[dc]...)
}

// View is the view at addr as dc's API servers see it, or nil when they
// do not list it.
func (s *State) View(dc, addr string) *apipb.ViewStatus {
	for _, v := range s.DCs[dc].GetViews() {
		if v.Address == addr {
			return v
		}
	}
	return nil
}

// FullyAvailable is dc's verdict as its API server gave it.
func (s *State) FullyAvailable(dc string) bool { return s.DCs[dc].GetFullyAvailable().GetOk() }

// judgeWithout judges dc as if the view at viewAddr (if any) were gone and
// apis fewer API servers answered.
func (s *State) judgeWithout(dc, viewAddr string, apis int) health.Verdict {
	st := s.DCs[dc]
	in := health.Input{LogAvailable: st.GetLog().GetAvailable(), LogError: st.GetLog().GetError()}
	for _, v := range st.GetViews() {
		if v.Address == viewAddr {
			continue
		}
		in.Views = append(in.Views, health.View{Addr: v.Address, Space: v.Space, Start: v.RangeStart, End: v.RangeEnd, UpToDate: v.UpToDate})
	}
	for _, a := range st.GetApiServers() {
		if a.Reachable {
			in.APIServers++
		}
	}
	in.APIServers -= apis
	fully, _ := health.Evaluate(in)
	return fully
}

// ErrRefused is returned when a step would break a verdict or the quorum;
// the error says which and why.
var ErrRefused = errors.New("refused")

func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRefused, fmt.Sprintf(format, args...))
}

// CheckStopView refuses to take the view at addr out of dc when dc is
// fully available and would not be without it: it is the last up-to-date
// view of some point.
func (s *State) CheckStopView(dc, addr string) error {
	if err := s.answered(dc); err != nil {
		return err
	}
	if !s.FullyAvailable(dc) {
		return nil // nothing left to break; the procedure is what repairs it
	}
	if v := s.judgeWithout(dc, addr, 0); !v.OK {
		return refuse("%s is fully available and would not be without view %s: %s", dc, addr, strings.Join(v.Missing, "; "))
	}
	return nil
}

// CheckStopAPI refuses to stop the API server at addr when it is the last
// one of a fully available dc.
func (s *State) CheckStopAPI(dc, addr string) error {
	if err := s.answered(dc); err != nil {
		return err
	}
	if !s.FullyAvailable(dc) {
		return nil
	}
	reachable := false
	for _, a := range s.DCs[dc].GetApiServers() {
		reachable = reachable || (a.Address == addr && a.Reachable)
	}
	if !reachable {
		return nil
	}
	if v := s.judgeWithout(dc, "", 1); !v.OK {
		return refuse("%s is fully available and would not be without API server %s: %s", dc, addr, strings.Join(v.Missing, "; "))
	}
	return nil
}

func (s *State) answered(dc string) error {
	if s.DCs[dc] == nil {
		return refuse("no API server of %s answered, so its verdicts are unknown: %v", dc, s.Unanswered[dc])
	}
	return nil
}

// member is the log member id, or nil.
func (s *State) member(id string) *logpb.Member {
	for _, m := range s.Log.GetMembers() {
		if m.Id == id {
			return m
		}
	}
	return nil
}

// caughtUp: the member answers, has not stopped, and has applied at least
// through index.
func caughtUp(m *logpb.Member, index uint64) bool {
	return m != nil && m.Error == "" && m.AppliedIndex >= index && m.AppliedIndex > 0
}

// CheckStopLog refuses to stop (restart) the log voter id unless the log is
// available and the other voters that are caught up still make a quorum;
// with remove, the quorum is that of the configuration without id.
func (s *State) CheckStopLog(id string, remove bool) error {
	if !s.LogAvailable || s.Log == nil {
		return refuse("the log is not available (%v): stopping a replica could only make it worse", s.LogErr)
	}
	voters, healthy := 0, []string{}
	lag := s.Log.LastIndex
	if lag > logLag {
		lag -= logLag
	} else {
		lag = 0
	}
	for _, m := range s.Log.Members {
		if !m.Voter {
			continue
		}
		voters++
		if m.Id != id && caughtUp(m, lag) {
			healthy = append(healthy, m.Id)
		}
	}
	if remove && s.member(id) != nil {
		voters--
	}
	quorum := voters/2 + 1
	if len(healthy) < quorum {
		sort.Strings(healthy)
		return refuse("stopping log voter %s would leave %d healthy voter(s) (%s) of %d, below the quorum of %d", id, len(healthy), strings.Join(healthy, ", "), voters, quorum)
	}
	return nil
}

// logLag is how far behind the log's last index a voter may be and still
// count for the quorum gate: it answers and applies.
const logLag = 1000
