// Package rpcconf is the one place that fixes the gRPC limits and keepalive
// settings of Akutan's servers and of the clients they dial. It is a leaf
// (grpc only), so client packages such as logclient import it without
// pulling in the rest of the lifecycle.
//
// Message sizes (docs/operating.md repeats this table):
//
//	what                                   limit
//	any server's sends, any client's       MaxMessageBytes (256 MiB): the largest
//	  receives                               unary lookup answer the API returns
//	log server receives                    --max-batch-bytes + 1 MiB
//	API server receives                    max tx bytes + 8 MiB (one write)
//	view server receives                   ViewMaxRecvBytes (64 MiB): a lookup
//	                                         batch; answers stream in chunks of
//	                                         at most 1000 facts and about 1 MiB
//	                                         (viewsvc.Config.MaxChunkBytes)
//	API server's view clients receive      64 MiB (fanout.Config.MaxRecvBytes):
//	                                         one such chunk, with room
//
// gRPC's own defaults (4 MiB received, unlimited sent) are never relied on.
//
// Streams and bytes in flight: a connection carries at most
// MaxStreamsPerConn concurrent calls (more wait for a slot, as HTTP/2
// prescribes), and its flow-control windows (StreamWindowBytes per call,
// ConnWindowBytes per connection) bound the bytes a client can have sent
// that the server has not yet read, so one client cannot fill a server's
// memory with requests it is slow to handle.
package rpcconf

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

const (
	// MaxMessageBytes bounds every message a server sends and every
	// message a client the servers dial receives.
	MaxMessageBytes = 256 << 20
	// ViewMaxRecvBytes bounds one request to a view server.
	ViewMaxRecvBytes = 64 << 20
	// MaxStreamsPerConn bounds the concurrent calls on one connection.
	MaxStreamsPerConn = 1000
	// StreamWindowBytes and ConnWindowBytes are the flow-control windows:
	// unread bytes one call, and one connection, may have in flight.
	StreamWindowBytes = 1 << 20
	ConnWindowBytes   = 16 << 20
)

// Keepalive: clients ping an idle connection every 30 s and drop it when
// the ping is not answered in 10 s, so a peer that vanished without a FIN
// (a killed VM, a partition) is noticed within 40 s, not at the kernel's TCP
// timeout of minutes. Servers accept pings down to every 10 s (a client
// pinging more often gets GOAWAY too_many_pings) and ping connections that
// have been idle for 60 s themselves.
var (
	ClientKeepalive   = keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}
	ServerEnforcement = keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}
	ServerKeepalive   = keepalive.ServerParameters{Time: 60 * time.Second, Timeout: 20 * time.Second}
)

// ServerOptions are the limits and keepalive of every server. Each server
// adds its own grpc.MaxRecvMsgSize (see the table above).
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxSendMsgSize(MaxMessageBytes),
		grpc.MaxConcurrentStreams(MaxStreamsPerConn),
		grpc.InitialWindowSize(StreamWindowBytes),
		grpc.InitialConnWindowSize(ConnWindowBytes),
		grpc.KeepaliveEnforcementPolicy(ServerEnforcement),
		grpc.KeepaliveParams(ServerKeepalive),
	}
}

// DialOptions are the limits and keepalive of every client a server dials
// (log replicas, views, peer API servers). Callers add credentials and
// their own connect parameters.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithKeepaliveParams(ClientKeepalive),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes)),
	}
}
