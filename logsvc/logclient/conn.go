package logclient

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/akutan/akutan/internal/lifecycle/rpcconf"
)

// maxMessage bounds messages both ways (internal/lifecycle/rpcconf); the
// servers' receive limits are lower.
const maxMessage = rpcconf.MaxMessageBytes

// ConnPool holds one gRPC connection per replica address. The zero value is
// ready to use; the server uses it to forward calls to the leader.
type ConnPool struct {
	mu sync.Mutex
	m  map[string]*grpc.ClientConn
}

// Get returns the connection to addr, creating it if needed.
func (c *ConnPool) Get(addr string) (*grpc.ClientConn, error) {
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
		grpc.WithKeepaliveParams(rpcconf.ClientKeepalive),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessage), grpc.MaxCallSendMsgSize(maxMessage)))
	if err != nil {
		return nil, err
	}
	c.m[addr] = cc
	return cc, nil
}

// Ready waits up to wait for the connection to addr to be ready. A call
// made on a connection that was not ready may never have been sent, so
// callers only send non-idempotent calls on ready connections.
func (c *ConnPool) Ready(ctx context.Context, addr string, wait time.Duration) (*grpc.ClientConn, bool) {
	cc, err := c.Get(addr)
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

// Close closes every connection.
func (c *ConnPool) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cc := range c.m {
		cc.Close()
	}
	c.m = nil
}
