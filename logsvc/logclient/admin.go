package logclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/logsvc/logerr"
	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/proto/logpb"
)

// Admin sends the log's administrative calls (Info, membership changes,
// DiscardPrefix, ArchiveNow, ChangeVersion) to its replicas, failing over
// between them. Any replica takes every call: a follower forwards it to the
// leader.
//
// What may be retried on the next replica: every call here is idempotent
// (adding a voter that is already one, removing one that is gone,
// discarding below the first index, archiving what is archived, changing
// to the version the log is at: each leaves the log as one call would), so
// a call is sent to the next replica when this one could not be reached,
// was unavailable, did not know a leader, or did not answer within the
// attempt's timeout. A refusal that is a decision (NOT_ARCHIVED,
// VERSION_REFUSED, an invalid argument) is returned at once: no other
// replica would decide differently. Info, a read, fails over on every
// error. Transfer-leader without a target is the one call whose repetition
// is not a no-op; a second transfer only moves leadership on again, which
// is harmless.
//
// Admin is safe for concurrent use.
type Admin struct {
	addrs []string
	conns ConnPool
	// Attempt bounds one call to one replica; ArchiveNow gets
	// ArchiveAttempt, since archiving a long tail takes a while.
	Attempt, InfoAttempt, ArchiveAttempt time.Duration
}

// NewAdmin returns an Admin for the replicas at addrs, tried in order.
func NewAdmin(addrs []string) *Admin {
	return &Admin{
		addrs:          append([]string(nil), addrs...),
		Attempt:        10 * time.Second,
		InfoAttempt:    3 * time.Second,
		ArchiveAttempt: 30 * time.Second,
	}
}

// Close releases the connections.
func (a *Admin) Close() { a.conns.Close() }

// Info asks the replicas in turn until one answers req.
func (a *Admin) Info(ctx context.Context, req *logpb.InfoRequest) (*logpb.InfoResponse, error) {
	return failover(ctx, a, a.InfoAttempt, func(error) bool { return true },
		func(ctx context.Context, c logpb.LogClient) (*logpb.InfoResponse, error) { return c.Info(ctx, req) })
}

// AddVoter adds a replica to the Raft cluster and records its gRPC address.
func (a *Admin) AddVoter(ctx context.Context, id, raftAddr, grpcAddr string) (*logpb.MembershipResponse, error) {
	req := &logpb.AddVoterRequest{Id: id, RaftAddress: raftAddr, GrpcAddress: grpcAddr}
	return failover(ctx, a, a.Attempt, Retryable,
		func(ctx context.Context, c logpb.LogClient) (*logpb.MembershipResponse, error) {
			return c.AddVoter(ctx, req)
		})
}

// RemoveServer removes a replica from the Raft cluster.
func (a *Admin) RemoveServer(ctx context.Context, id string) (*logpb.MembershipResponse, error) {
	req := &logpb.RemoveServerRequest{Id: id}
	return failover(ctx, a, a.Attempt, Retryable,
		func(ctx context.Context, c logpb.LogClient) (*logpb.MembershipResponse, error) {
			return c.RemoveServer(ctx, req)
		})
}

// TransferLeader hands leadership to the replica id, or to any voter when
// id is empty.
func (a *Admin) TransferLeader(ctx context.Context, id string) (*logpb.MembershipResponse, error) {
	req := &logpb.TransferLeadershipRequest{Id: id}
	return failover(ctx, a, a.Attempt, Retryable,
		func(ctx context.Context, c logpb.LogClient) (*logpb.MembershipResponse, error) {
			return c.TransferLeadership(ctx, req)
		})
}

// DiscardPrefix discards the entries below before and returns the log's
// new first index. The log refuses (logerr.ErrNotArchived) unless every
// entry below before is archived.
func (a *Admin) DiscardPrefix(ctx context.Context, before uint64) (uint64, error) {
	req := &logpb.DiscardPrefixRequest{Before: before}
	resp, err := failover(ctx, a, a.Attempt, Retryable,
		func(ctx context.Context, c logpb.LogClient) (*logpb.DiscardPrefixResponse, error) {
			return c.DiscardPrefix(ctx, req)
		})
	if err != nil {
		return 0, fmt.Errorf("discard prefix: %w", err)
	}
	return resp.FirstIndex, nil
}

// ArchiveNow has the leader archive every entry committed so far and
// returns the index archived through.
func (a *Admin) ArchiveNow(ctx context.Context) (uint64, error) {
	resp, err := failover(ctx, a, a.ArchiveAttempt, Retryable,
		func(ctx context.Context, c logpb.LogClient) (*logpb.ArchiveNowResponse, error) {
			return c.ArchiveNow(ctx, &logpb.ArchiveNowRequest{})
		})
	if err != nil {
		return 0, fmt.Errorf("archive now: %w", err)
	}
	return resp.ArchivedThrough, nil
}

// ChangeVersion appends a version change to version to, as an entry of
// version current (the log's version in force), and returns its index. The
// log refuses it with logerr.ErrVersionRefused unless every log replica
// supports to, and as an invalid entry unless to is above the log's
// version. It may be repeated: once one change to to is committed, another
// is refused as not raising the version, and changes nothing.
func (a *Admin) ChangeVersion(ctx context.Context, current, to uint32) (uint64, error) {
	entry, err := proto.Marshal(&entrypb.Envelope{Version: current,
		Command: &entrypb.Envelope_VersionChange{VersionChange: &entrypb.VersionChange{ToVersion: to}}})
	if err != nil {
		return 0, err
	}
	req := &logpb.AppendRequest{Entries: [][]byte{entry}}
	resp, err := failover(ctx, a, a.Attempt, Retryable,
		func(ctx context.Context, c logpb.LogClient) (*logpb.AppendResponse, error) {
			return c.Append(ctx, req)
		})
	if err != nil {
		return 0, fmt.Errorf("change log version to %d: %w", to, err)
	}
	return resp.FirstIndex, nil
}

// Retryable reports whether an idempotent administrative call that failed
// with err may be sent to another replica: the replica was unreachable or
// unavailable, knew no leader, or did not answer in time. Errors are
// compared after logerr.FromStatus.
func Retryable(err error) bool {
	switch {
	case errors.Is(err, logerr.ErrNotLeader), errors.Is(err, logerr.ErrUnavailable):
		return true
	case errors.Is(err, context.DeadlineExceeded):
		return true
	}
	var le *logerr.Error
	if errors.As(err, &le) {
		return false // a decision of the log, such as NOT_ARCHIVED
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}

// failover calls call on each replica in turn, each for at most attempt,
// until one succeeds or fails with an error retry rejects.
func failover[T any](ctx context.Context, a *Admin, attempt time.Duration, retry func(error) bool,
	call func(context.Context, logpb.LogClient) (T, error)) (T, error) {
	var zero T
	if len(a.addrs) == 0 {
		return zero, errors.New("no log replica addresses")
	}
	var errs []error
	for _, addr := range a.addrs {
		cc, err := a.conns.Get(addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, attempt)
		v, err := call(cctx, logpb.NewLogClient(cc))
		cancel()
		if err == nil {
			return v, nil
		}
		if ctx.Err() != nil {
			return zero, fmt.Errorf("%s: %w", addr, ctx.Err())
		}
		err = logerr.FromStatus(err)
		if !retry(err) {
			return zero, fmt.Errorf("%s: %w", addr, err)
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	return zero, errors.Join(errs...)
}
