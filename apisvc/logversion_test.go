package apisvc

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/logsvc/logclient"
	"github.com/akutan/akutan/logsvc/logerr"
	"github.com/akutan/akutan/proto/apipb"
	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/proto/logpb"
	"github.com/akutan/akutan/proto/viewpb"
)

// fakeLog is a log of one replica at a version the test sets. Like the
// real leader, it refuses an entry above its version, saying its version.
type fakeLog struct {
	logpb.UnimplementedLogServer
	addr string

	mu       sync.Mutex
	version  uint32
	versions []uint32 // of the entries appended
}

func newFakeLog(t *testing.T) *fakeLog {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeLog{addr: l.Addr().String(), version: 1}
	s := grpc.NewServer()
	logpb.RegisterLogServer(s, f)
	go s.Serve(l)
	t.Cleanup(s.Stop)
	return f
}

func (f *fakeLog) setVersion(v uint32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version = v
}

func (f *fakeLog) Info(context.Context, *logpb.InfoRequest) (*logpb.InfoResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &logpb.InfoResponse{NodeId: "n1", LastIndex: uint64(len(f.versions)), LogVersion: f.version}, nil
}

func (f *fakeLog) Append(_ context.Context, req *logpb.AppendRequest) (*logpb.AppendResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, e := range req.Entries {
		var env entrypb.Envelope
		if err := proto.Unmarshal(e, &env); err != nil {
			return nil, logerr.ToStatus(logerr.New(logerr.ErrInvalidEntry, nil, "entry %d: %v", i, err))
		}
		if env.Version > f.version {
			return nil, logerr.ToStatus(logerr.New(logerr.ErrInvalidEntry, map[string]string{"log_version": fmt.Sprint(f.version)},
				"entry %d: envelope version %d is above the log version %d", i, env.Version, f.version))
		}
	}
	first := uint64(len(f.versions)) + 1
	for _, e := range req.Entries {
		var env entrypb.Envelope
		proto.Unmarshal(e, &env)
		f.versions = append(f.versions, env.Version)
	}
	return &logpb.AppendResponse{FirstIndex: first}, nil
}

func (f *fakeLog) lastVersion() uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.versions[len(f.versions)-1]
}

// noViews is a view reader with nothing applied; a write that names no
// node by name never asks it for more.
type noViews struct{ viewReader }

func (noViews) RecentIndex(viewpb.Space) uint64 { return 0 }

// versionServer is an API server writing to log, supporting max.
func versionServer(t *testing.T, log *fakeLog, max uint32) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Log, cfg.MaxSupportedVersion = []string{log.addr}, max
	met, err := newMetrics(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	app := logclient.NewAppender(cfg.Log, logclient.DefaultAppenderConfig())
	s := &Server{cfg: cfg, views: noViews{}, app: app, met: met}
	t.Cleanup(func() { app.Close(); s.conns.Close() })
	return s
}

func writeOne(ctx context.Context, s *Server) error {
	_, err := s.Write(ctx, &apipb.WriteRequest{Inserts: []*apipb.Fact{{Subject: id(1), Predicate: id(2), Object: &apipb.Object{Value: &apipb.Object_Int64{Int64: 5}}}}})
	return err
}

// An API server writes at the log's version in force: never above what it
// supports (it refuses, FailedPrecondition, while the log is above), never
// above the log's (a refusal for the version makes it take the leader's),
// and it notices a change on its periodic refresh.
func TestWriteAtLogVersion(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	log := newFakeLog(t)
	old, upgraded := versionServer(t, log, 1), versionServer(t, log, 2)

	// Log at 1: both write version 1.
	for _, s := range []*Server{old, upgraded} {
		if err := writeOne(ctx, s); err != nil {
			t.Fatal(err)
		}
		if v := log.lastVersion(); v != 1 {
			t.Fatalf("server supporting %d wrote version %d at log version 1", s.cfg.MaxSupportedVersion, v)
		}
	}

	// The log moves to 2. Until their refresh, the servers write version
	// 1, which stays valid; the refresh happens in the background once the
	// version is older than logVersionRefresh.
	log.setVersion(2)
	for _, s := range []*Server{old, upgraded} {
		lv := s.logVersion()
		lv.mu.Lock()
		lv.checked = time.Now().Add(-2 * logVersionRefresh)
		lv.mu.Unlock()
		if err := writeOne(ctx, s); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if v, _ := lv.get(time.Now()); v == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the log version was not refreshed")
			}
		}
	}
	if err := writeOne(ctx, upgraded); err != nil {
		t.Fatal(err)
	}
	if v := log.lastVersion(); v != 2 {
		t.Fatalf("upgraded server wrote version %d at log version 2", v)
	}
	err := writeOne(ctx, old)
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "the log is at version 2 and this API server writes versions up to 1") {
		t.Fatalf("write through a server that supports only version 1: %v", err)
	}
	// A new server learns the version on its first write.
	if err := writeOne(ctx, versionServer(t, log, 1)); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("first write through a new server supporting 1: %v", err)
	}

	// A server that believes the log is further on than the leader is
	// refused for the version, takes the leader's and writes at it.
	ahead := versionServer(t, log, 3)
	ahead.logVersion().set(3, time.Now())
	if err := writeOne(ctx, ahead); err != nil {
		t.Fatalf("write after a refusal for the version: %v", err)
	}
	if v := log.lastVersion(); v != 2 {
		t.Fatalf("wrote version %d after the leader said 2", v)
	}
}
