package fanout

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/akutan/akutan/proto/viewpb"
)

var (
	// ErrUncovered means no healthy view serves a point or segment of a
	// space at the requested index. The wrapping message names the range,
	// e.g. "no healthy view covers [0x8000000000000000, 0x10000000000000000)
	// of HashSP at index 7".
	ErrUncovered = errors.New("no healthy view covers")
	// ErrNoTiling means the healthy views of a space cover it but no set of
	// them tiles it exactly, so no digest can be added up.
	ErrNoTiling = errors.New("views do not tile the space")
	// ErrWrongInput means a malformed request: a nil lookup, an object that
	// cannot be hashed, a bad space, or a lookup a view rejected as invalid.
	ErrWrongInput = errors.New("wrong input")
	// ErrBadResponse means a view answered something that breaks the view
	// contract (an unknown lookup offset, another index). The view is
	// treated as failed and the request is retried elsewhere.
	ErrBadResponse = errors.New("bad view response")
	// ErrBeyondLog means the index asked for is further past the log's
	// end than views wait for (viewsvc.Config.MaxAhead).
	ErrBeyondLog = errors.New("index beyond the log's end")
	// ErrTooLarge means a view answer exceeded a size limit, or the view
	// had too many reads waiting; the request fails, the view stays
	// healthy.
	ErrTooLarge = errors.New("result too large or view too busy")
	// ErrClosed means the Fanout is closed.
	ErrClosed = errors.New("fanout closed")
)

// errorClass says what a failed attempt means for the request.
type errorClass int

const (
	// retryable: the view failed; try another and avoid this one until it
	// answers a ping.
	retryable errorClass = iota
	// final: the answer would be the same anywhere; return it.
	final
)

// classify wraps the error of an attempt on the view at addr and says what
// to do with it. ctx is the request's context, which is still live.
func classify(ctx context.Context, addr string, err error) (errorClass, error) {
	st, ok := status.FromError(err)
	if !ok {
		return retryable, fmt.Errorf("view %s: %w", addr, err)
	}
	switch st.Code() {
	case codes.InvalidArgument:
		// The view rejected the lookups themselves (INVALID_LOOKUP,
		// EMPTY_BATCH, BATCH_TOO_LARGE); every view would.
		return final, fmt.Errorf("%w: view %s: %s", ErrWrongInput, addr, st.Message())
	case codes.ResourceExhausted:
		// A message over the size limit, or a view with too many waiting
		// reads: this request is too big or too many, which says nothing
		// about the view's health. Fail the request, keep the view.
		return final, fmt.Errorf("%w: view %s: %s", ErrTooLarge, addr, st.Message())
	case codes.OutOfRange:
		// The index is far past the log's end: every view would say so.
		// (A hash outside the view's range is OutOfRange too, but a
		// routing error: retried elsewhere.)
		if reason(st) == "BEYOND_LOG" {
			return final, fmt.Errorf("%w: view %s: %s", ErrBeyondLog, addr, st.Message())
		}
	case codes.DeadlineExceeded:
		// The view waited for the index until the deadline we sent it. Our
		// own deadline is the same instant, give or take the network.
		if _, ok := ctx.Deadline(); ok {
			return final, fmt.Errorf("view %s: %s: %w", addr, st.Message(), context.DeadlineExceeded)
		}
	}
	return retryable, fmt.Errorf("view %s: %w", addr, err)
}

// reason is the ErrorInfo reason a view attached to st, or "".
func reason(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// uncovered is ErrUncovered for the hash interval [lo, last] of space.
func uncovered(space viewpb.Space, lo, last uint64) error {
	return fmt.Errorf("%w %s of %s", ErrUncovered, fmtRange(lo, last), spaceName(space))
}

// fmtRange formats the inclusive interval [lo, last] as a half-open range.
func fmtRange(lo, last uint64) string {
	if last == ^uint64(0) {
		return fmt.Sprintf("[%#016x, 0x10000000000000000)", lo)
	}
	return fmt.Sprintf("[%#016x, %#016x)", lo, last+1)
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
