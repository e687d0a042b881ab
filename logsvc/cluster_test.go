package logsvc

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/logsvc/logclient"
	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/proto/logpb"
)

var (
	portsMu sync.Mutex
	ports   = map[string]bool{}
)

// freeAddr returns a loopback address that was free a moment ago and that
// no other call in this test process has returned: the kernel may hand the
// same ephemeral port out again once it is closed.
func freeAddr(t testing.TB) string {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if !ports[addr] {
			ports[addr] = true
			return addr
		}
	}
}

// pingEntry is an entry that carries a unique nonce, so tests can find it.
func pingEntry(nonce string) []byte {
	b, err := proto.Marshal(&entrypb.Envelope{Version: 1, Command: &entrypb.Envelope_Ping{Ping: &entrypb.Ping{Nonce: []byte(nonce)}}})
	if err != nil {
		panic(err)
	}
	return b
}

func versionChangeEntry(version, to uint32) []byte {
	b, err := proto.Marshal(&entrypb.Envelope{Version: version, Command: &entrypb.Envelope_VersionChange{VersionChange: &entrypb.VersionChange{ToVersion: to}}})
	if err != nil {
		panic(err)
	}
	return b
}

func nonceOf(t testing.TB, data []byte) string {
	var env entrypb.Envelope
	if err := proto.Unmarshal(data, &env); err != nil {
		t.Fatalf("entry does not decode: %v", err)
	}
	return string(env.GetPing().GetNonce())
}

// testConfig is a replica configuration with timeouts suited to a loaded
// two-core machine.
func testConfig(t testing.TB, id string) Config {
	cfg := DefaultConfig()
	cfg.ID = id
	cfg.RaftAddr = freeAddr(t)
	cfg.GRPCAddr = freeAddr(t)
	cfg.DataDir = t.TempDir()
	cfg.HeartbeatTimeout = 500 * time.Millisecond
	cfg.ElectionTimeout = 500 * time.Millisecond
	cfg.LeaderLeaseTimeout = 250 * time.Millisecond
	cfg.LogLevel = "error"
	return cfg
}

// cluster is an in-process cluster of real replicas over loopback TCP.
type cluster struct {
	t       testing.TB
	cfgs    []Config
	servers []*Server // nil when stopped
}

func newCluster(t testing.TB, n int, mod func(i int, c *Config)) *cluster {
	t.Helper()
	c := &cluster{t: t}
	var peers []Peer
	for i := 0; i < n; i++ {
		cfg := testConfig(t, fmt.Sprintf("n%d", i+1))
		cfg.Bootstrap = true
		peers = append(peers, Peer{ID: cfg.ID, RaftAddr: cfg.RaftAddr})
		c.cfgs = append(c.cfgs, cfg)
	}
	for i := range c.cfgs {
		c.cfgs[i].Peers = peers
		if mod != nil {
			mod(i, &c.cfgs[i])
		}
	}
	c.servers = make([]*Server, n)
	for i := range c.cfgs {
		c.start(i)
	}
	t.Cleanup(c.close)
	c.waitLeader()
	return c
}

func (c *cluster) start(i int) *Server {
	c.t.Helper()
	s, err := Start(c.cfgs[i])
	if err != nil {
		c.t.Fatalf("start %s: %v", c.cfgs[i].ID, err)
	}
	c.servers[i] = s
	return s
}

func (c *cluster) stop(i int) {
	c.t.Helper()
	if err := c.servers[i].Close(); err != nil {
		c.t.Logf("close %s: %v", c.cfgs[i].ID, err)
	}
	c.servers[i] = nil
}

func (c *cluster) close() {
	for i, s := range c.servers {
		if s != nil {
			s.Close()
			c.servers[i] = nil
		}
	}
}

func (c *cluster) addrs() []string {
	var out []string
	for _, cfg := range c.cfgs {
		out = append(out, cfg.GRPCAddr)
	}
	return out
}

// waitLeader waits until a running replica leads and every running replica
// has registered its address.
func (c *cluster) waitLeader() *Server {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range c.servers {
			if s != nil && s.IsLeader() {
				m := s.store.Meta().Members
				ok := true
				for _, o := range c.servers {
					ok = ok && (o == nil || m[o.cfg.ID] != "")
				}
				if ok {
					return s
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatal("no leader within 20s")
	return nil
}

// waitApplied waits until every running replica has applied index.
func (c *cluster) waitApplied(index uint64) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		done := true
		for _, s := range c.servers {
			if s != nil {
				if _, last := s.store.Bounds(); last < index {
					done = false
				}
			}
		}
		if done {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("replicas did not apply index %d within 30s", index)
}

// readAll reads every entry from one replica's gRPC service, from index
// from to last.
func readAll(t testing.TB, addr string, from, last uint64) []logclient.Entry {
	t.Helper()
	r := logclient.NewReader([]string{addr})
	defer r.Close()
	var out []logclient.Entry
	if last < from {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := fmt.Errorf("done")
	err := r.Stream(ctx, from, func(es []logclient.Entry) error {
		for _, e := range es {
			if e.Index > last {
				return done
			}
			out = append(out, e)
			if e.Index == last {
				return done
			}
		}
		return nil
	})
	if err != done {
		t.Fatalf("read %s from %d to %d: %v (got %d entries)", addr, from, last, err, len(out))
	}
	return out
}

// info asks one replica for Info.
func info(t testing.TB, addr string, linearizable bool) *logpb.InfoResponse {
	t.Helper()
	cl, close := client(t, addr)
	defer close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cl.Info(ctx, &logpb.InfoRequest{Linearizable: linearizable})
	if err != nil {
		t.Fatalf("info %s: %v", addr, err)
	}
	return resp
}

func client(t testing.TB, addr string) (logpb.LogClient, func()) {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	return logpb.NewLogClient(cc), func() { cc.Close() }
}
