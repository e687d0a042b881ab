package apisvc

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/akutan/akutan/apisvc/internal/fanout"
	"github.com/akutan/akutan/logsvc/logerr"
)

var (
	// ErrInvalid means the request is malformed.
	ErrInvalid = errors.New("invalid request")
	// ErrUnknownName means a name that must exist does not, at the index
	// read.
	ErrUnknownName = errors.New("unknown name")
	// ErrNameTaken means an insert gives a node a name another node has.
	ErrNameTaken = errors.New("name already taken")
	// ErrTooLarge means the transaction is over the size limit.
	ErrTooLarge = errors.New("transaction too large")
	// ErrContention means a write lost too many races to claim its names.
	ErrContention = errors.New("too much contention on names")
	// ErrLogUnavailable means the log could not be reached or has no leader.
	ErrLogUnavailable = errors.New("log unavailable")
)

// codeTable maps errors to gRPC codes; the first match wins.
var codeTable = []struct {
	err  error
	code codes.Code
}{
	{context.Canceled, codes.Canceled},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
	{ErrInvalid, codes.InvalidArgument},
	{ErrTooLarge, codes.InvalidArgument},
	{ErrUnknownName, codes.NotFound},
	{ErrNameTaken, codes.AlreadyExists},
	{ErrContention, codes.Aborted},
	{ErrLogUnavailable, codes.Unavailable},
	{fanout.ErrUncovered, codes.Unavailable},
	{fanout.ErrWrongInput, codes.InvalidArgument},
	{fanout.ErrNoTiling, codes.FailedPrecondition},
	{fanout.ErrClosed, codes.Unavailable},
	{fanout.ErrBeyondLog, codes.OutOfRange},
	{fanout.ErrTooLarge, codes.ResourceExhausted},
	{fanout.ErrBadResponse, codes.Internal},
	{logerr.ErrUnknownOutcome, codes.Unknown},
	{logerr.ErrEntryTooLarge, codes.InvalidArgument},
	{logerr.ErrInvalidEntry, codes.InvalidArgument},
	{logerr.ErrInvalidArgument, codes.InvalidArgument},
	{logerr.ErrNotLeader, codes.Unavailable},
	{logerr.ErrUnavailable, codes.Unavailable},
	{logerr.ErrUnsupportedVersion, codes.FailedPrecondition},
}

// toStatus converts err for gRPC. Status errors from views (for example an
// index a view did not reach by the deadline) keep their code.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	for _, e := range codeTable {
		if errors.Is(err, e.err) {
			return status.Error(e.code, err.Error())
		}
	}
	if st, ok := status.FromError(err); ok {
		return st.Err()
	}
	return status.Error(codes.Internal, err.Error())
}
