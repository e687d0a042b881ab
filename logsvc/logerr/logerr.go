// Package logerr holds the errors of the log service and their one mapping
// to and from gRPC status. Servers return these errors; clients get them back
// from any RPC through FromStatus and compare them with errors.Is.
package logerr

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Domain is the ErrorInfo domain of every log service error.
const Domain = "log.akutan"

var (
	// ErrNotLeader means this replica is not the leader; the call did not
	// change the log and may be sent to the leader.
	ErrNotLeader = errors.New("not the leader")
	// ErrTruncated means the index is below the first retained index.
	ErrTruncated = errors.New("log truncated")
	// ErrPastEnd means the index is past the end of the log.
	ErrPastEnd = errors.New("index past the end of the log")
	// ErrUnsupportedVersion means this replica met a log version it does not
	// support and stopped applying.
	ErrUnsupportedVersion = errors.New("unsupported log version")
	// ErrNotArchived means a discard was refused because the entries are not
	// all archived.
	ErrNotArchived = errors.New("entries not archived")
	// ErrGuardConflict means a conditional append was refused because an
	// append after its guard index claimed one of its keys.
	ErrGuardConflict = errors.New("guard conflict")
	// ErrInvalidEntry means an entry is not a valid envelope.
	ErrInvalidEntry = errors.New("invalid entry")
	// ErrEntryTooLarge means an entry or batch is over the size limit.
	ErrEntryTooLarge = errors.New("entry too large")
	// ErrEmptyBatch means an append carried no entries.
	ErrEmptyBatch = errors.New("empty batch")
	// ErrInvalidArgument covers other malformed requests.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrUnknownOutcome means an append may or may not have been committed:
	// the leader was lost or the connection broke after the request left.
	ErrUnknownOutcome = errors.New("append outcome unknown")
	// ErrUnavailable means the replica could not take the call now (it is
	// shutting down, or Raft's queue is full); nothing was changed.
	ErrUnavailable = errors.New("log replica unavailable")
	// ErrVersionRefused means the leader refused a version change because a
	// replica does not support the target version or could not be asked;
	// nothing was appended. Metadata: version, and replicas (the IDs it
	// names, comma-separated).
	ErrVersionRefused = errors.New("version change refused")
)

// Error is a log error with the details a caller may act on.
type Error struct {
	// Kind is one of the Err… values above.
	Kind error
	// Msg is the whole human-readable message.
	Msg string
	// Meta holds details such as leader_address or first_index.
	Meta map[string]string
}

func (e *Error) Error() string { return e.Msg }

// Unwrap lets errors.Is match Kind.
func (e *Error) Unwrap() error { return e.Kind }

// Uint returns a numeric detail, or 0.
func (e *Error) Uint(key string) uint64 {
	v, _ := strconv.ParseUint(e.Meta[key], 10, 64)
	return v
}

// New returns an Error of kind with a formatted message and details given
// as key, value pairs.
func New(kind error, meta map[string]string, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...), Meta: meta}
}

// NotLeader returns ErrNotLeader naming the leader, if known.
func NotLeader(leaderID, leaderAddr string) *Error {
	msg := "not the leader; leader unknown"
	if leaderID != "" {
		msg = fmt.Sprintf("not the leader; leader is %s at %s", leaderID, leaderAddr)
	}
	return New(ErrNotLeader, map[string]string{"leader_id": leaderID, "leader_address": leaderAddr}, "%s", msg)
}

// Truncated returns ErrTruncated for index below first.
func Truncated(index, first uint64) *Error {
	return New(ErrTruncated, map[string]string{"first_index": strconv.FormatUint(first, 10)},
		"log truncated: index %d is below the first retained index %d", index, first)
}

// PastEnd returns ErrPastEnd for index beyond last+1.
func PastEnd(index, last uint64) *Error {
	return New(ErrPastEnd, map[string]string{"last_index": strconv.FormatUint(last, 10)},
		"index %d is past the end of the log (last index %d)", index, last)
}

// Unsupported returns ErrUnsupportedVersion.
func Unsupported(version, supported uint32) *Error {
	return New(ErrUnsupportedVersion, map[string]string{
		"version":   strconv.FormatUint(uint64(version), 10),
		"supported": strconv.FormatUint(uint64(supported), 10),
	}, "unsupported log version %d (supports up to %d)", version, supported)
}

var reasons = []struct {
	kind   error
	reason string
	code   codes.Code
}{
	{ErrNotLeader, "NOT_LEADER", codes.FailedPrecondition},
	{ErrTruncated, "TRUNCATED", codes.OutOfRange},
	{ErrPastEnd, "PAST_END", codes.OutOfRange},
	{ErrUnsupportedVersion, "UNSUPPORTED_VERSION", codes.FailedPrecondition},
	{ErrNotArchived, "NOT_ARCHIVED", codes.FailedPrecondition},
	{ErrGuardConflict, "GUARD_CONFLICT", codes.Aborted},
	{ErrInvalidEntry, "INVALID_ENTRY", codes.InvalidArgument},
	{ErrEntryTooLarge, "ENTRY_TOO_LARGE", codes.InvalidArgument},
	{ErrEmptyBatch, "EMPTY_BATCH", codes.InvalidArgument},
	{ErrInvalidArgument, "INVALID_ARGUMENT", codes.InvalidArgument},
	{ErrUnknownOutcome, "UNKNOWN_OUTCOME", codes.Unavailable},
	{ErrUnavailable, "UNAVAILABLE", codes.Unavailable},
	{ErrVersionRefused, "VERSION_REFUSED", codes.FailedPrecondition},
}

// ToStatus converts err into a gRPC status error. Context errors pass
// through as Canceled and DeadlineExceeded; errors that are not log errors
// become Internal.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	var meta map[string]string
	var le *Error
	if errors.As(err, &le) {
		meta = le.Meta
	}
	for _, r := range reasons {
		if errors.Is(err, r.kind) {
			st := status.New(r.code, err.Error())
			if withInfo, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: r.reason, Domain: Domain, Metadata: meta}); derr == nil {
				st = withInfo
			}
			return st.Err()
		}
	}
	return status.Error(codes.Internal, err.Error())
}

// FromStatus converts a gRPC error back into a log error when it carries a
// log ErrorInfo; other errors are returned unchanged.
func FromStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok || err == nil {
		return err
	}
	for _, d := range st.Details() {
		info, ok := d.(*errdetails.ErrorInfo)
		if !ok || info.Domain != Domain {
			continue
		}
		for _, r := range reasons {
			if r.reason == info.Reason {
				return &Error{Kind: r.kind, Msg: st.Message(), Meta: info.Metadata}
			}
		}
	}
	return err
}
