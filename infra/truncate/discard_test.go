package truncate

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/logsvc"
	"github.com/akutan/akutan/logsvc/logclient"
	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/snapshot"
	"github.com/akutan/akutan/snapshot/storetest"
)

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Against a real log replica over gRPC: the coordinator discards exactly
// what the plan allows, and the log then starts there.
func TestCoordinatorDiscardsRealLog(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	store, err := snapshot.NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := logsvc.DefaultConfig()
	cfg.ID, cfg.RaftAddr, cfg.GRPCAddr, cfg.DataDir = "n1", freeAddr(t), freeAddr(t), t.TempDir()
	cfg.Bootstrap, cfg.LogLevel = true, "error"
	cfg.ArchiveStore, cfg.ArchiveInterval = store, 20*time.Millisecond
	cfg.Segments.SegmentAge = 100 * time.Millisecond
	srv, err := logsvc.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	app := logclient.NewAppender([]string{cfg.GRPCAddr}, logclient.DefaultAppenderConfig())
	defer app.Close()
	entry, _ := proto.Marshal(&entrypb.Envelope{Version: 1, Command: &entrypb.Envelope_Ping{Ping: &entrypb.Ping{Nonce: []byte("x")}}})
	batch := make([][]byte, 500)
	for i := range batch {
		batch[i] = entry
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		if _, err = app.AppendBatch(ctx, batch); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []snapshot.CheckpointRef{cp("dc1", "sp", 0, half, 320, time.Hour), cp("dc1", "sp", half, 0, 450, time.Hour), cp("dc1", "po", 0, 0, 400, time.Hour)} {
		putCheckpoint(t, store, c)
	}
	log := NewGRPCLog([]string{cfg.GRPCAddr})
	defer log.Close()
	// The checkpoints are an hour old by the store's clock.
	clocked := storetest.NewClocked(store)
	clocked.Advance(time.Hour)
	c := &Coordinator{Config: Config{Clusters: []string{"dc1"}, Delay: time.Minute}, Store: clocked, Log: log}
	// Wait for the archive to hold everything, then discard.
	var p *Plan
	for deadline := time.Now().Add(30 * time.Second); ; {
		p, err = c.Once(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		if p.Done || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !p.Done || p.FirstAfter != 321 {
		t.Fatalf("plan:\n%s", p)
	}
	in, err := log.Info(ctx)
	if err != nil || in.First != 321 {
		t.Fatalf("log after discard: %+v %v", in, err)
	}
	t.Logf("\n%s", p)
}
