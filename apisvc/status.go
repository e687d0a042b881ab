package apisvc

import (
	"context"
	"fmt"
	"sync"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/akutan/akutan/infra/health"
	"github.com/akutan/akutan/internal/buildinfo"
	"github.com/akutan/akutan/proto/apipb"
	"github.com/akutan/akutan/proto/viewpb"
)

// Status gathers the log's, this datacenter's views' and API servers'
// state and judges it (infra/health): the verdicts are the datacenter's.
// Other datacenters' views (the fallback) are left out.
func (s *Server) Status(ctx context.Context, _ *apipb.StatusRequest) (*apipb.StatusResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp := &apipb.StatusResponse{Log: &apipb.LogStatus{}}
	var in health.Input

	// Availability is a linearizable answer, which carries the members'
	// details too; without a leader a plain answer still describes them.
	info, err := s.logInfo(ctx, true, false)
	if err != nil {
		resp.Log.Error = err.Error()
		in.LogError = err.Error()
		info, _ = s.logInfo(ctx, false, false)
	} else {
		resp.Log.Available = true
		in.LogAvailable = true
	}
	if info != nil {
		resp.Log.FirstIndex, resp.Log.LastIndex, resp.Log.Leader, resp.Log.Version = info.FirstIndex, info.LastIndex, info.LeaderId, info.LogVersion
		for _, m := range info.Members {
			resp.Log.Members = append(resp.Log.Members, &apipb.LogMember{Id: m.Id, Address: m.GrpcAddress, AppliedIndex: m.AppliedIndex, Error: m.Error,
				MaxSupportedVersion: m.MaxSupportedVersion})
		}
	}

	for _, v := range s.views.Views() {
		if v.Fallback {
			continue // another datacenter's: its own API servers report it
		}
		vs := &apipb.ViewStatus{Address: v.Addr, Reachable: v.Err == nil && v.Status != nil}
		if v.Err != nil {
			vs.Error = v.Err.Error()
		}
		if st := v.Status; st != nil {
			vs.Space = spaceName(st.Space)
			vs.RangeStart, vs.RangeEnd = st.GetRange().GetStart(), st.GetRange().GetEnd()
			vs.LastApplied = st.LastApplied
			vs.State = st.State.String()
			vs.CheckpointIndex, vs.CheckpointError = st.CheckpointIndex, st.CheckpointError
			vs.BootBytesDone, vs.BootBytesTotal = st.BootBytesDone, st.BootBytesTotal
			vs.Dc, vs.MaxSupportedVersion, vs.Build = st.Cluster, st.MaxSupportedVersion, st.Build
			if st.Error != "" {
				vs.Error = st.Error
			}
			if resp.Log.LastIndex > st.LastApplied {
				vs.Lag = resp.Log.LastIndex - st.LastApplied
			}
			vs.UpToDate = vs.Reachable && v.Healthy && st.State == viewpb.State_SERVING && vs.Lag <= s.cfg.MaxLag
		}
		resp.Views = append(resp.Views, vs)
		in.Views = append(in.Views, health.View{Addr: vs.Address, Space: vs.Space, Start: vs.RangeStart, End: vs.RangeEnd, UpToDate: vs.UpToDate})
	}

	resp.ApiServers = append(resp.ApiServers, &apipb.ApiServerStatus{Address: s.Addr(), Reachable: true})
	resp.ApiServers = append(resp.ApiServers, s.pingPeers(ctx)...)
	for _, a := range resp.ApiServers {
		if a.Reachable {
			in.APIServers++
		}
	}
	fully, healthy := health.Evaluate(in)
	resp.Version, resp.Dc, resp.MaxSupportedVersion = buildinfo.Get().String(), s.cfg.DC, s.cfg.MaxSupportedVersion
	resp.FullyAvailable = &apipb.Verdict{Ok: fully.OK, Missing: fully.Missing}
	resp.Healthy = &apipb.Verdict{Ok: healthy.OK, Missing: healthy.Missing}
	return resp, nil
}

// pingPeers checks the other API servers' gRPC health, in parallel.
func (s *Server) pingPeers(ctx context.Context) []*apipb.ApiServerStatus {
	out := make([]*apipb.ApiServerStatus, len(s.cfg.Peers))
	var wg sync.WaitGroup
	for i, addr := range s.cfg.Peers {
		out[i] = &apipb.ApiServerStatus{Address: addr}
		wg.Add(1)
		go func(st *apipb.ApiServerStatus) {
			defer wg.Done()
			cc, err := s.conns.Get(st.Address)
			if err != nil {
				st.Error = err.Error()
				return
			}
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			r, err := healthpb.NewHealthClient(cc).Check(cctx, &healthpb.HealthCheckRequest{})
			switch {
			case err != nil:
				st.Error = err.Error()
			case r.Status != healthpb.HealthCheckResponse_SERVING:
				st.Error = fmt.Sprintf("health: %s", r.Status)
			default:
				st.Reachable = true
			}
		}(out[i])
	}
	wg.Wait()
	return out
}

func spaceName(s viewpb.Space) string {
	switch s {
	case viewpb.Space_HASH_SP:
		return "HashSP"
	case viewpb.Space_HASH_PO:
		return "HashPO"
	}
	return s.String()
}
