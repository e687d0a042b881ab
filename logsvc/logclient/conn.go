package logclient

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
)

// maxMessage bounds messages both ways; the server's limits are lower.
const maxMessage = 256 << 20

// conns holds one gRPC connection per replica address.
type conns struct {
	mu sync.Mutex
	m  map[string]*grpc.ClientConn
}

func (c *conns) get(addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*grpc.ClientConn{}
	}
	if cc, ok := c.m[addr]; ok {
		return cc, nil
	}
	cc, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessage), grpc.MaxCallSendMsgSize(maxMessage)))
	if err != nil {
		return nil, err
	}
	c.m[addr] = cc
	return cc, nil
}

// ready waits up to wait for the connection to addr to be ready. A call
// made on a connection that was not ready may never have been sent, so
// callers only send non-idempotent calls on ready connections.
func (c *conns) ready(ctx context.Context, addr string, wait time.Duration) (*grpc.ClientConn, bool) {
	cc, err := c.get(addr)
	if err != nil {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		s := cc.GetState()
		if s == connectivity.Ready {
			return cc, true
		}
		if s == connectivity.Idle {
			cc.Connect()
		}
		if !cc.WaitForStateChange(ctx, s) {
			return cc, false
		}
	}
}

func (c *conns) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cc := range c.m {
		cc.Close()
	}
	c.m = nil
}
