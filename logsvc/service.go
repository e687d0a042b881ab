package logsvc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/akutan/akutan/internal/buildinfo"
	"github.com/akutan/akutan/internal/pebblelog"
	"github.com/akutan/akutan/logsvc/internal/entrystore"
	"github.com/akutan/akutan/logsvc/logerr"
	"github.com/akutan/akutan/proto/logpb"
)

var _ logpb.LogServer = (*Server)(nil)

// Read stream limits per message.
const (
	defaultReadEntries = 1000
	maxReadEntries     = 10000
	readMessageBytes   = 1 << 20
)

// Append validates a batch, forwards it to the leader if needed, and answers
// once Raft has committed and applied it.
func (s *Server) Append(ctx context.Context, req *logpb.AppendRequest) (*logpb.AppendResponse, error) {
	first, err := s.append(ctx, req)
	if err != nil {
		return nil, logerr.ToStatus(err)
	}
	_, leader := s.leader()
	return &logpb.AppendResponse{FirstIndex: first, LeaderAddress: leader}, nil
}

// Guard limits.
const (
	maxGuardKeys     = 100000
	maxGuardKeyBytes = 1 << 10
)

func (s *Server) append(ctx context.Context, req *logpb.AppendRequest) (uint64, error) {
	if err := s.fsm.haltErr(); err != nil {
		return 0, s.haltedErr(err)
	}
	leader := s.raft.State() == raft.Leader
	to, err := s.validateBatch(req.Entries, leader)
	if err != nil {
		return 0, err
	}
	if err := validateGuards(req.GuardKeys); err != nil {
		return 0, err
	}
	if leader && to > 0 {
		if err := s.versionGate(ctx, to); err != nil {
			return 0, err
		}
	}
	if !leader {
		client, fctx, err := s.leaderClient(ctx)
		if err != nil {
			return 0, err
		}
		resp, err := client.Append(fctx, req)
		if err != nil {
			return 0, forwardErr(err)
		}
		return resp.FirstIndex, nil
	}
	start := time.Now()
	f := s.raft.Apply(encodeAppend(req.Entries, req.GuardSince, req.GuardKeys), s.cfg.ApplyTimeout)
	err = f.Error()
	s.metrics.observeAppend(start, err)
	if err != nil {
		return 0, s.raftErr(err)
	}
	switch r := f.Response().(type) {
	case appendResult:
		return r.first, nil
	case error:
		if errors.Is(r, logerr.ErrGuardConflict) || errors.Is(r, logerr.ErrInvalidArgument) || errors.Is(r, logerr.ErrPastEnd) {
			// A deterministic refusal: every replica refused it too.
			return 0, r
		}
		// Raft committed the entry but this replica could not apply it.
		return 0, logerr.New(logerr.ErrUnknownOutcome, nil, "append committed by raft but not applied here: %v", r)
	}
	return 0, fmt.Errorf("append: unexpected response %T", f.Response())
}

// forwardErr maps a forwarded call's error. A broken connection after the
// request left leaves the outcome unknown.
func forwardErr(err error) error {
	le := logerr.FromStatus(err)
	if _, ok := le.(*logerr.Error); ok {
		return le
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return logerr.New(logerr.ErrUnknownOutcome, nil, "forward to leader: %v", err)
}

// raftErr maps Raft's errors, separating what surely did not happen from
// what may have.
func (s *Server) raftErr(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		id, addr := s.leader()
		return logerr.NotLeader(id, addr)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return logerr.New(logerr.ErrUnavailable, nil, "raft queue full: %v", err)
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrRaftShutdown):
		return logerr.New(logerr.ErrUnknownOutcome, nil, "%v", err)
	case pebblelog.IsDiskFull(err):
		// The leader could not write the entry to its own Raft log, so it
		// was not replicated either, and it stepped down: nothing happened.
		return logerr.New(logerr.ErrUnavailable, nil, "log replica %s: %v", s.cfg.ID, err)
	}
	return err
}

// haltedErr is what a stopped replica answers. A full disk is Unavailable,
// naming it: this replica took nothing, and the client goes on to another.
func (s *Server) haltedErr(err error) error {
	if pebblelog.IsDiskFull(err) {
		return logerr.New(logerr.ErrUnavailable, nil, "log replica %s stopped: %v", s.cfg.ID, err)
	}
	return err
}

func validateGuards(keys [][]byte) error {
	if len(keys) > maxGuardKeys {
		return logerr.New(logerr.ErrInvalidArgument, nil, "%d guard keys; the limit is %d", len(keys), maxGuardKeys)
	}
	for i, k := range keys {
		if len(k) == 0 || len(k) > maxGuardKeyBytes {
			return logerr.New(logerr.ErrInvalidArgument, nil, "guard key %d is %d bytes; keys are 1 to %d bytes", i, len(k), maxGuardKeyBytes)
		}
	}
	return nil
}

// validateBatch checks sizes and envelopes, and returns the target of the
// batch's version change (0: none). Only the leader checks versions: a
// follower's view of the log version may lag, and its own support does not
// matter for what the leader appends.
func (s *Server) validateBatch(entries [][]byte, leader bool) (uint32, error) {
	if len(entries) == 0 {
		return 0, logerr.New(logerr.ErrEmptyBatch, nil, "append of an empty batch")
	}
	var logVersion, supported uint32 // zero: structure only
	if leader {
		logVersion, supported = s.store.Meta().LogVersion, s.cfg.MaxSupportedVersion
	}
	total := 0
	var to uint32
	for i, e := range entries {
		if len(e) > s.cfg.MaxEntryBytes {
			return 0, logerr.New(logerr.ErrEntryTooLarge, nil, "entry %d is %d bytes; the limit is %d", i, len(e), s.cfg.MaxEntryBytes)
		}
		total += len(e)
		h, err := validateEnvelope(i, e, logVersion, supported)
		if err != nil {
			return 0, err
		}
		if h.versionChange {
			if len(entries) > 1 {
				return 0, logerr.New(logerr.ErrInvalidEntry, nil, "entry %d: a version change must be appended alone", i)
			}
			to = h.toVersion
		}
	}
	if total > s.cfg.MaxBatchBytes {
		return 0, logerr.New(logerr.ErrEntryTooLarge, nil, "batch is %d bytes; the limit is %d", total, s.cfg.MaxBatchBytes)
	}
	return to, nil
}

// versionGate refuses a change to version to unless every member of the
// Raft configuration reports that it supports to. Voters and nonvoters
// alike apply the log, and one that cannot read the change would stop at
// it (doc.go, rule 4); a member that cannot be asked counts as one that
// does not support it. The leader asks just before it proposes the change,
// so a member replaced by an older build in between is not seen: the
// control plane's check (akutan log set-version) and that rule cover it.
func (s *Server) versionGate(ctx context.Context, to uint32) error {
	members, err := s.members(ctx, false)
	if err != nil {
		return err
	}
	var ids, why []string
	for _, m := range members {
		switch {
		case m.MaxSupportedVersion == 0:
			why = append(why, fmt.Sprintf("%s could not be asked (%s)", m.Id, m.Error))
		case m.MaxSupportedVersion < to:
			why = append(why, fmt.Sprintf("%s supports up to version %d", m.Id, m.MaxSupportedVersion))
		default:
			continue
		}
		ids = append(ids, m.Id)
	}
	if len(ids) == 0 {
		return nil
	}
	return logerr.New(logerr.ErrVersionRefused,
		map[string]string{"version": fmt.Sprint(to), "replicas": strings.Join(ids, ",")},
		"version change to %d refused: every log replica must support it first; %s", to, strings.Join(why, "; "))
}

// Read streams committed entries from req.From on and follows the log.
func (s *Server) Read(req *logpb.ReadRequest, stream logpb.Log_ReadServer) error {
	return logerr.ToStatus(s.read(stream.Context(), req, stream.Send))
}

func (s *Server) read(ctx context.Context, req *logpb.ReadRequest, send func(*logpb.ReadResponse) error) error {
	if req.From == 0 {
		return logerr.New(logerr.ErrInvalidArgument, nil, "read from index 0: indexes start at 1")
	}
	max := int(req.MaxEntries)
	if max <= 0 {
		max = defaultReadEntries
	}
	max = min(max, maxReadEntries)
	from := req.From
	if _, last := s.store.Bounds(); from > last+1 {
		return logerr.PastEnd(from, last)
	}
	for {
		changed := s.store.Changed()
		first, last := s.store.Bounds()
		if from < first {
			return logerr.Truncated(from, first)
		}
		if from <= last {
			entries, err := s.store.Read(from, max, readMessageBytes)
			if errors.Is(err, entrystore.ErrBelowFirst) {
				first, _ := s.store.Bounds()
				return logerr.Truncated(from, first)
			}
			if err != nil {
				return err
			}
			resp := &logpb.ReadResponse{Entries: make([]*logpb.Entry, len(entries))}
			for i, e := range entries {
				resp.Entries[i] = &logpb.Entry{Index: e.Index, Data: e.Data}
			}
			if err := send(resp); err != nil {
				return err
			}
			from = entries[len(entries)-1].Index + 1
			continue
		}
		if err := s.fsm.haltErr(); err != nil {
			return s.haltedErr(err)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closing:
			return logerr.New(logerr.ErrUnavailable, nil, "log replica %s is shutting down", s.cfg.ID)
		}
	}
}

// Info describes the log. With Linearizable, the leader confirms its
// leadership and applies everything committed before answering.
func (s *Server) Info(ctx context.Context, req *logpb.InfoRequest) (*logpb.InfoResponse, error) {
	resp, err := s.info(ctx, req)
	return resp, logerr.ToStatus(err)
}

func (s *Server) info(ctx context.Context, req *logpb.InfoRequest) (*logpb.InfoResponse, error) {
	if req.Linearizable {
		if s.raft.State() != raft.Leader {
			client, fctx, err := s.leaderClient(ctx)
			if err != nil {
				return nil, err
			}
			resp, err := client.Info(fctx, req)
			if err != nil {
				return nil, logerr.FromStatus(err)
			}
			return resp, nil
		}
		if err := s.raft.VerifyLeader().Error(); err != nil {
			return nil, s.raftErr(err)
		}
		if err := s.raft.Barrier(timeoutOf(ctx, s.cfg.ApplyTimeout)).Error(); err != nil {
			return nil, s.raftErr(err)
		}
	}
	meta := s.store.Meta()
	lid, laddr := s.leader()
	resp := &logpb.InfoResponse{
		NodeId:              s.cfg.ID,
		FirstIndex:          meta.First,
		LastIndex:           meta.Last,
		LeaderId:            lid,
		LeaderAddress:       laddr,
		Term:                s.raft.CurrentTerm(),
		LogVersion:          meta.LogVersion,
		MaxSupportedVersion: s.cfg.MaxSupportedVersion,
		ArchivedThrough:     meta.ArchivedThrough,
	}
	if err := s.fsm.haltErr(); err != nil {
		resp.Error = err.Error()
	}
	members, err := s.members(ctx, req.LocalOnly)
	if err != nil {
		return nil, err
	}
	resp.Members = members
	return resp, nil
}

// members lists the Raft configuration with each member's gRPC address,
// applied index, supported version, error and build: this replica's own, and
// unless localOnly every other member's, asked in parallel. A member that
// could not be asked has MaxSupportedVersion 0 and Error saying why.
func (s *Server) members(ctx context.Context, localOnly bool) ([]*logpb.Member, error) {
	cf := s.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return nil, s.raftErr(err)
	}
	meta := s.store.Meta()
	var members []*logpb.Member
	var wg sync.WaitGroup
	for _, srv := range cf.Configuration().Servers {
		m := &logpb.Member{
			Id:          string(srv.ID),
			RaftAddress: string(srv.Address),
			GrpcAddress: meta.Members[string(srv.ID)],
			Voter:       srv.Suffrage == raft.Voter,
		}
		members = append(members, m)
		switch {
		case m.Id == s.cfg.ID:
			m.AppliedIndex, m.MaxSupportedVersion, m.Build = meta.Last, s.cfg.MaxSupportedVersion, buildinfo.Get().String()
			if err := s.fsm.haltErr(); err != nil {
				m.Error = err.Error()
			}
		case localOnly:
		case m.GrpcAddress == "":
			m.Error = "grpc address not registered yet"
		default:
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.askMember(ctx, m)
			}()
		}
	}
	wg.Wait()
	return members, nil
}

// askMember fills in another member's applied index, supported version,
// error and build from its own Info.
func (s *Server) askMember(ctx context.Context, m *logpb.Member) {
	conn, err := s.conns.Get(m.GrpcAddress)
	if err != nil {
		m.Error = err.Error()
		return
	}
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	r, err := logpb.NewLogClient(conn).Info(cctx, &logpb.InfoRequest{LocalOnly: true})
	if err != nil {
		m.Error = fmt.Sprintf("unreachable: %v", logerr.FromStatus(err))
		return
	}
	m.AppliedIndex, m.MaxSupportedVersion, m.Error = r.LastIndex, r.MaxSupportedVersion, r.Error
	// Its build is in its own entry of its local-only member list.
	for _, self := range r.Members {
		if self.Id == r.NodeId {
			m.Build = self.Build
		}
	}
}

// DiscardPrefix drops entries below req.Before on every replica, if they are
// all archived.
func (s *Server) DiscardPrefix(ctx context.Context, req *logpb.DiscardPrefixRequest) (*logpb.DiscardPrefixResponse, error) {
	first, err := s.discardPrefix(ctx, req)
	if err != nil {
		return nil, logerr.ToStatus(err)
	}
	return &logpb.DiscardPrefixResponse{FirstIndex: first}, nil
}

func (s *Server) discardPrefix(ctx context.Context, req *logpb.DiscardPrefixRequest) (uint64, error) {
	if req.Before == 0 {
		return 0, logerr.New(logerr.ErrInvalidArgument, nil, "discard before index 0: indexes start at 1")
	}
	if err := s.fsm.haltErr(); err != nil {
		return 0, s.haltedErr(err)
	}
	if s.raft.State() != raft.Leader {
		client, fctx, err := s.leaderClient(ctx)
		if err != nil {
			return 0, err
		}
		resp, err := client.DiscardPrefix(fctx, req)
		if err != nil {
			return 0, logerr.FromStatus(err)
		}
		return resp.FirstIndex, nil
	}
	if meta := s.store.Meta(); req.Before-1 > meta.ArchivedThrough {
		return 0, notArchived(req.Before, meta.ArchivedThrough)
	}
	f := s.raft.Apply(encodeIndex(cmdDiscard, req.Before), timeoutOf(ctx, s.cfg.ApplyTimeout))
	if err := f.Error(); err != nil {
		return 0, s.raftErr(err)
	}
	switch r := f.Response().(type) {
	case uint64:
		return r, nil
	case error:
		return 0, r
	}
	return 0, fmt.Errorf("discard: unexpected response %T", f.Response())
}

// AddVoter records the new member's gRPC address and adds it to Raft.
func (s *Server) AddVoter(ctx context.Context, req *logpb.AddVoterRequest) (*logpb.MembershipResponse, error) {
	if req.Id == "" || req.RaftAddress == "" {
		return nil, logerr.ToStatus(logerr.New(logerr.ErrInvalidArgument, nil, "add voter needs an id and a raft address"))
	}
	return s.membership(ctx, func(c logpb.LogClient, fctx context.Context) (*logpb.MembershipResponse, error) {
		return c.AddVoter(fctx, req)
	}, func(timeout time.Duration) error {
		if req.GrpcAddress != "" {
			if err := s.raft.Apply(encodeRegister(req.Id, req.GrpcAddress), timeout).Error(); err != nil {
				return err
			}
		}
		return s.raft.AddVoter(raft.ServerID(req.Id), raft.ServerAddress(req.RaftAddress), 0, timeout).Error()
	})
}

// RemoveServer removes a member from Raft.
func (s *Server) RemoveServer(ctx context.Context, req *logpb.RemoveServerRequest) (*logpb.MembershipResponse, error) {
	if req.Id == "" {
		return nil, logerr.ToStatus(logerr.New(logerr.ErrInvalidArgument, nil, "remove server needs an id"))
	}
	return s.membership(ctx, func(c logpb.LogClient, fctx context.Context) (*logpb.MembershipResponse, error) {
		return c.RemoveServer(fctx, req)
	}, func(timeout time.Duration) error {
		return s.raft.RemoveServer(raft.ServerID(req.Id), 0, timeout).Error()
	})
}

// TransferLeadership hands leadership to req.Id, or to any voter.
func (s *Server) TransferLeadership(ctx context.Context, req *logpb.TransferLeadershipRequest) (*logpb.MembershipResponse, error) {
	return s.membership(ctx, func(c logpb.LogClient, fctx context.Context) (*logpb.MembershipResponse, error) {
		return c.TransferLeadership(fctx, req)
	}, func(time.Duration) error {
		if req.Id == "" {
			return s.raft.LeadershipTransfer().Error()
		}
		cf := s.raft.GetConfiguration()
		if err := cf.Error(); err != nil {
			return err
		}
		for _, srv := range cf.Configuration().Servers {
			if string(srv.ID) == req.Id {
				return s.raft.LeadershipTransferToServer(srv.ID, srv.Address).Error()
			}
		}
		return logerr.New(logerr.ErrInvalidArgument, nil, "no member %q", req.Id)
	})
}

// membership runs change on the leader, or forwards the call there.
func (s *Server) membership(ctx context.Context, forward func(logpb.LogClient, context.Context) (*logpb.MembershipResponse, error), change func(time.Duration) error) (*logpb.MembershipResponse, error) {
	if s.raft.State() != raft.Leader {
		client, fctx, err := s.leaderClient(ctx)
		if err != nil {
			return nil, logerr.ToStatus(err)
		}
		return forward(client, fctx)
	}
	if err := change(timeoutOf(ctx, s.cfg.ApplyTimeout)); err != nil {
		var le *logerr.Error
		if !errors.As(err, &le) {
			err = s.raftErr(err)
		}
		return nil, logerr.ToStatus(err)
	}
	id, _ := s.leader()
	return &logpb.MembershipResponse{LeaderId: id}, nil
}

// RegisterMember records a member's gRPC address through Raft.
func (s *Server) RegisterMember(ctx context.Context, req *logpb.RegisterMemberRequest) (*logpb.RegisterMemberResponse, error) {
	if req.Id == "" || req.GrpcAddress == "" {
		return nil, logerr.ToStatus(logerr.New(logerr.ErrInvalidArgument, nil, "register member needs an id and a grpc address"))
	}
	if s.store.Meta().Members[req.Id] == req.GrpcAddress {
		return &logpb.RegisterMemberResponse{}, nil
	}
	if s.raft.State() != raft.Leader {
		client, fctx, err := s.leaderClient(ctx)
		if err != nil {
			return nil, logerr.ToStatus(err)
		}
		return client.RegisterMember(fctx, req)
	}
	if err := s.raft.Apply(encodeRegister(req.Id, req.GrpcAddress), timeoutOf(ctx, s.cfg.ApplyTimeout)).Error(); err != nil {
		return nil, logerr.ToStatus(s.raftErr(err))
	}
	return &logpb.RegisterMemberResponse{}, nil
}

// timeoutOf turns ctx's deadline into a Raft timeout, capped at def.
func timeoutOf(ctx context.Context, def time.Duration) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		if left := time.Until(d); left < def {
			return max(left, time.Millisecond)
		}
	}
	return def
}

// ArchiveNow archives every entry committed so far, on the leader, and
// answers with the archived-through index.
func (s *Server) ArchiveNow(ctx context.Context, req *logpb.ArchiveNowRequest) (*logpb.ArchiveNowResponse, error) {
	through, err := s.archiveAll(ctx, req)
	if err != nil {
		return nil, logerr.ToStatus(err)
	}
	_, leader := s.leader()
	return &logpb.ArchiveNowResponse{ArchivedThrough: through, LeaderAddress: leader}, nil
}

func (s *Server) archiveAll(ctx context.Context, req *logpb.ArchiveNowRequest) (uint64, error) {
	if err := s.fsm.haltErr(); err != nil {
		return 0, s.haltedErr(err)
	}
	if s.raft.State() != raft.Leader {
		client, fctx, err := s.leaderClient(ctx)
		if err != nil {
			return 0, err
		}
		resp, err := client.ArchiveNow(fctx, req)
		if err != nil {
			return 0, logerr.FromStatus(err)
		}
		return resp.ArchivedThrough, nil
	}
	if s.cfg.Archiver == nil {
		return 0, logerr.New(logerr.ErrUnavailable, nil, "log replica %s has no archive configured", s.cfg.ID)
	}
	// Everything committed before the call: confirm leadership and apply
	// it, then archive through the last applied index.
	if err := s.raft.VerifyLeader().Error(); err != nil {
		return 0, s.raftErr(err)
	}
	if err := s.raft.Barrier(timeoutOf(ctx, s.cfg.ApplyTimeout)).Error(); err != nil {
		return 0, s.raftErr(err)
	}
	r := archiveRequest{ctx: ctx, through: s.store.Meta().Last, done: make(chan archiveResult, 1)}
	select {
	case s.archiveNow <- r:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-s.closing:
		return 0, logerr.New(logerr.ErrUnavailable, nil, "log replica %s is shutting down", s.cfg.ID)
	}
	select {
	case res := <-r.done:
		var le *logerr.Error
		if res.err != nil && !errors.As(res.err, &le) && ctx.Err() == nil {
			return 0, logerr.New(logerr.ErrUnavailable, nil, "archive: %v", res.err)
		}
		return res.through, res.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
