package viewsvc

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrorDomain is the ErrorInfo domain of every view service error.
const ErrorDomain = "view.akutan"

var (
	// ErrUnsupportedVersion means the log moved to, or an entry used, a log
	// version this view does not support. The view stops applying.
	ErrUnsupportedVersion = errors.New("unsupported log version")
	// ErrMalformedEntry means a log entry could not be interpreted. The view
	// stops applying.
	ErrMalformedEntry = errors.New("malformed log entry")
	// ErrUnknownCommand means an envelope carried no command this view
	// knows. The view stops applying.
	ErrUnknownCommand = errors.New("unknown log command")
	// ErrStopped means the view has stopped applying the log, so an index
	// past its last applied index will never be reached. It wraps the cause.
	ErrStopped = errors.New("view stopped applying the log")
	// ErrWrongSpace means a lookup kind that this view's space cannot serve.
	ErrWrongSpace = errors.New("wrong space")
	// ErrOutOfRange means a lookup whose hash is outside the view's range.
	ErrOutOfRange = errors.New("outside the view's hash range")
	// ErrInvalidLookup means a lookup is malformed.
	ErrInvalidLookup = errors.New("invalid lookup")
	// ErrEmptyBatch means a request carried no lookups.
	ErrEmptyBatch = errors.New("empty batch")
	// ErrBatchTooLarge means a request carried more lookups than allowed.
	ErrBatchTooLarge = errors.New("batch too large")
	// ErrClosed means the view is closed.
	ErrClosed = errors.New("view closed")
	// ErrConfigMismatch means a data directory belongs to another space or
	// range, or to an unknown layout.
	ErrConfigMismatch = errors.New("data directory does not match the configuration")
	// ErrLogGap means the log reader delivered an entry out of order.
	ErrLogGap = errors.New("log entries out of order")
	// ErrNoStore means the view has no object store configured.
	ErrNoStore = errors.New("no object store configured")
	// ErrCheckpointFailed means writing a checkpoint failed, usually because
	// the object store failed; it wraps the cause.
	ErrCheckpointFailed = errors.New("checkpoint failed")
	// ErrNotEmpty means a restore was asked for over an existing data
	// directory.
	// ErrBeyondLog means a read asked for an index further past the log's
	// committed end than Config.MaxAhead.
	ErrBeyondLog = errors.New("index beyond the log's end")
	// ErrTooManyWaiters means Config.MaxWaiters reads already wait for
	// the view to apply their index.
	ErrTooManyWaiters = errors.New("too many reads waiting for the view")
	ErrNotEmpty       = errors.New("data directory is not empty: booting from the bucket happens only into an empty directory")
)

// UnsupportedVersionError says which version was met and which is
// supported. It matches ErrUnsupportedVersion.
type UnsupportedVersionError struct {
	Version   uint32
	Supported uint32
}

func (e *UnsupportedVersionError) Error() string {
	return fmt.Sprintf("unsupported log version %d (supports up to %d)", e.Version, e.Supported)
}

// Is lets errors.Is match ErrUnsupportedVersion.
func (e *UnsupportedVersionError) Is(target error) bool { return target == ErrUnsupportedVersion }

var reasons = []struct {
	kind   error
	reason string
	code   codes.Code
}{
	{ErrUnsupportedVersion, "UNSUPPORTED_VERSION", codes.FailedPrecondition},
	{ErrMalformedEntry, "MALFORMED_ENTRY", codes.FailedPrecondition},
	{ErrUnknownCommand, "UNKNOWN_COMMAND", codes.FailedPrecondition},
	{ErrStopped, "STOPPED", codes.FailedPrecondition},
	{ErrWrongSpace, "WRONG_SPACE", codes.FailedPrecondition},
	{ErrOutOfRange, "OUT_OF_RANGE", codes.OutOfRange},
	{ErrInvalidLookup, "INVALID_LOOKUP", codes.InvalidArgument},
	{ErrEmptyBatch, "EMPTY_BATCH", codes.InvalidArgument},
	{ErrBatchTooLarge, "BATCH_TOO_LARGE", codes.InvalidArgument},
	{ErrClosed, "CLOSED", codes.Unavailable},
	{ErrConfigMismatch, "CONFIG_MISMATCH", codes.FailedPrecondition},
	{ErrLogGap, "LOG_GAP", codes.Internal},
	{ErrNoStore, "NO_STORE", codes.FailedPrecondition},
	{ErrCheckpointFailed, "CHECKPOINT_FAILED", codes.Unavailable},
	{ErrNotEmpty, "NOT_EMPTY", codes.FailedPrecondition},
	{ErrBeyondLog, "BEYOND_LOG", codes.OutOfRange},
	{ErrTooManyWaiters, "TOO_MANY_WAITERS", codes.ResourceExhausted},
}

// ToStatus converts err into a gRPC status error: view errors get their code
// and an ErrorInfo, context errors become Canceled and DeadlineExceeded with
// the message kept, and anything else becomes Internal.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	for _, r := range reasons {
		if errors.Is(err, r.kind) {
			st := status.New(r.code, err.Error())
			info := &errdetails.ErrorInfo{Reason: r.reason, Domain: ErrorDomain}
			var uv *UnsupportedVersionError
			if errors.As(err, &uv) {
				info.Metadata = map[string]string{
					"version":   strconv.FormatUint(uint64(uv.Version), 10),
					"supported": strconv.FormatUint(uint64(uv.Supported), 10),
				}
			}
			if withInfo, derr := st.WithDetails(info); derr == nil {
				st = withInfo
			}
			return st.Err()
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}
