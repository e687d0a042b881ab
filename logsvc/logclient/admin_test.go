package logclient_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/logsvc"
	"github.com/akutan/akutan/logsvc/logclient"
	"github.com/akutan/akutan/logsvc/logerr"
	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/proto/logpb"
	"github.com/akutan/akutan/snapshot"
)

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestRetryable(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{status.Error(codes.Unavailable, "connection refused"), true},
		{status.Error(codes.DeadlineExceeded, "slow"), true},
		{context.DeadlineExceeded, true},
		{logerr.NotLeader("", ""), true},
		{logerr.New(logerr.ErrUnavailable, nil, "busy"), true},
		{logerr.New(logerr.ErrNotArchived, nil, "not archived"), false},
		{logerr.New(logerr.ErrInvalidArgument, nil, "bad"), false},
		{status.Error(codes.InvalidArgument, "bad"), false},
		{status.Error(codes.Internal, "bug"), false},
		{fmt.Errorf("wrapped: %w", logerr.NotLeader("a", "b")), true},
	} {
		if got := logclient.Retryable(c.err); got != c.want {
			t.Errorf("Retryable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// Against a real replica, listed after an address nobody listens on: every
// call fails over past the dead address, and a decision of the log
// (an invalid argument) comes back at once, not as a list of failures.
func TestAdminFailsOver(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	store, err := snapshot.NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := logsvc.DefaultConfig()
	cfg.ID, cfg.RaftAddr, cfg.GRPCAddr, cfg.DataDir = "n1", freeAddr(t), freeAddr(t), t.TempDir()
	cfg.Bootstrap, cfg.LogLevel, cfg.MaxSupportedVersion = true, "error", 2
	cfg.ArchiveStore, cfg.ArchiveInterval = store, time.Hour
	srv, err := logsvc.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	dead := freeAddr(t)
	admin := logclient.NewAdmin([]string{dead, cfg.GRPCAddr})
	defer admin.Close()

	app := logclient.NewAppender([]string{cfg.GRPCAddr}, logclient.DefaultAppenderConfig())
	defer app.Close()
	entry, _ := proto.Marshal(&entrypb.Envelope{Version: 1, Command: &entrypb.Envelope_Ping{Ping: &entrypb.Ping{Nonce: []byte("x")}}})
	var last uint64
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if last, err = app.AppendBatch(ctx, [][]byte{entry, entry, entry}); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}

	in, err := admin.Info(ctx, &logpb.InfoRequest{Linearizable: true})
	if err != nil || in.NodeId != "n1" || in.LastIndex < last {
		t.Fatalf("info: %v %v", in, err)
	}
	through, err := admin.ArchiveNow(ctx)
	if err != nil || through < last {
		t.Fatalf("archive now: through %d, %v; want >= %d", through, err, last)
	}
	first, err := admin.DiscardPrefix(ctx, last)
	if err != nil || first != last {
		t.Fatalf("discard prefix: first %d, %v; want %d", first, err, last)
	}
	resp, err := admin.TransferLeader(ctx, "nobody")
	if !errors.Is(err, logerr.ErrInvalidArgument) || strings.Contains(err.Error(), dead) {
		t.Fatalf("transfer to a non-member: %v %v, want only the live replica's refusal", resp, err)
	}

	// A version change is appended once; repeated, the log refuses it as
	// not raising the version, at once.
	at, err := admin.ChangeVersion(ctx, 1, 2)
	if err != nil || at <= last {
		t.Fatalf("change version: at %d, %v", at, err)
	}
	if in, err := admin.Info(ctx, &logpb.InfoRequest{Linearizable: true}); err != nil || in.LogVersion != 2 || in.LastIndex != at {
		t.Fatalf("info after the change: %v %v", in, err)
	}
	if _, err := admin.ChangeVersion(ctx, 2, 2); !errors.Is(err, logerr.ErrInvalidEntry) || !strings.Contains(err.Error(), "does not raise") || strings.Contains(err.Error(), dead) {
		t.Fatalf("repeated change: %v", err)
	}

	none := logclient.NewAdmin([]string{dead})
	defer none.Close()
	if _, err := none.Info(ctx, &logpb.InfoRequest{}); err == nil || !strings.Contains(err.Error(), dead) {
		t.Fatalf("info with no live replica: %v", err)
	}
}
