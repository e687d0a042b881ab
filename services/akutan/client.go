package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/akutan/akutan/proto/apipb"
)

// Message limits of the API client: lookups may answer with many facts.
const (
	maxRecvMessage = 256 << 20
	maxSendMessage = 64 << 20
)

// apiClient calls the API servers at addrs, failing over between them.
//
// What may go to the next server is kept apart from how:
//   - a call whose connection could not be made (dial failure, connection
//     refused, no handshake within connectWait) never left, so it may always
//     go to the next server, a write included;
//   - a read (lookup, status) also goes to the next server when this one
//     answers Unavailable, or does not answer within its attempt's timeout;
//   - a write that may have reached a server is never sent again: unless
//     the server refused it outright (a definite answer such as
//     InvalidArgument or NotFound), its outcome is unknown
//     (errOutcomeUnknown), because a second send could commit it twice.
//
// Calls go out with WaitForReady(false) (fail fast), and only on a
// connection that is ready, so "never left" is known rather than guessed.
type apiClient struct {
	addrs       []string
	conns       map[string]*grpc.ClientConn
	connectWait time.Duration
	next        int // the server to try first: the last one that answered
}

func newAPIClient(addrs []string) (*apiClient, error) {
	if len(addrs) == 0 {
		return nil, usageError("no API server addresses (--api)")
	}
	return &apiClient{addrs: addrs, conns: map[string]*grpc.ClientConn{}, connectWait: 3 * time.Second}, nil
}

func (c *apiClient) Close() {
	for _, cc := range c.conns {
		cc.Close()
	}
}

// errNotSent means the call was not sent: no connection to the server
// could be made.
var errNotSent = errors.New("not sent")

// ready returns a ready connection to addr, or an error wrapping
// errNotSent.
func (c *apiClient) ready(ctx context.Context, addr string) (*grpc.ClientConn, error) {
	cc, ok := c.conns[addr]
	if !ok {
		var err error
		cc, err = grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.WaitForReady(false), grpc.MaxCallRecvMsgSize(maxRecvMessage), grpc.MaxCallSendMsgSize(maxSendMessage)))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errNotSent, err)
		}
		c.conns[addr] = cc
	}
	ctx, cancel := context.WithTimeout(ctx, c.connectWait)
	defer cancel()
	for {
		s := cc.GetState()
		switch s {
		case connectivity.Ready:
			return cc, nil
		case connectivity.Idle:
			cc.Connect()
		case connectivity.TransientFailure, connectivity.Shutdown:
			return nil, fmt.Errorf("%w: cannot connect", errNotSent)
		}
		if !cc.WaitForStateChange(ctx, s) {
			return nil, fmt.Errorf("%w: no connection within %v", errNotSent, c.connectWait)
		}
	}
}

// order returns the addresses starting with the preferred one.
func (c *apiClient) order() []int {
	idx := make([]int, len(c.addrs))
	for i := range idx {
		idx[i] = (c.next + i) % len(c.addrs)
	}
	return idx
}

// read runs call on each server in turn until one answers, each attempt
// bounded by attempt (0: only by ctx).
func (c *apiClient) read(ctx context.Context, attempt time.Duration, call func(context.Context, apipb.AkutanClient) error) error {
	var errs []error
	for _, i := range c.order() {
		addr := c.addrs[i]
		cc, err := c.ready(ctx, addr)
		if err == nil {
			actx, cancel := ctx, context.CancelFunc(func() {})
			if attempt > 0 {
				actx, cancel = context.WithTimeout(ctx, attempt)
			}
			err = call(actx, apipb.NewAkutanClient(cc))
			cancel()
			if err == nil {
				c.next = i
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !readRetryable(err) {
			return err
		}
		errs = append(errs, fmt.Errorf("api server %s: %w", addr, err))
	}
	return noServer(errs)
}

// readRetryable: a read may go to the next server when it was not sent, or
// the server was unavailable or too slow.
func readRetryable(err error) bool {
	if errors.Is(err, errNotSent) {
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}

// errOutcomeUnknown means a write may or may not have been committed.
var errOutcomeUnknown = errors.New("outcome unknown")

// definite reports whether a write's error is the server's answer that it
// did not write: a refusal, not a lost call.
func definite(err error) bool {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.PermissionDenied,
		codes.Unauthenticated, codes.FailedPrecondition, codes.Aborted, codes.OutOfRange,
		codes.Unimplemented, codes.ResourceExhausted:
		return true
	}
	return false
}

// write runs a non-idempotent call once. It moves to the next server only
// while the call has surely not been sent; once sent, a failure that is
// not the server's refusal is an errOutcomeUnknown naming the server.
func (c *apiClient) write(ctx context.Context, call func(context.Context, apipb.AkutanClient) error) error {
	var errs []error
	for _, i := range c.order() {
		addr := c.addrs[i]
		cc, err := c.ready(ctx, addr)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err() // nothing was sent
			}
			errs = append(errs, fmt.Errorf("api server %s: %w", addr, err))
			continue
		}
		err = call(ctx, apipb.NewAkutanClient(cc))
		if err == nil {
			c.next = i
			return nil
		}
		if definite(err) {
			return err
		}
		return fmt.Errorf("%w: api server %s: %w", errOutcomeUnknown, addr, err)
	}
	return noServer(errs)
}

// noServer reports that no server could take a call.
func noServer(errs []error) error {
	return fmt.Errorf("no API server answered: %w", errors.Join(errs...))
}
