package miniotest_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/akutan/akutan/snapshot"
	"github.com/akutan/akutan/snapshot/miniotest"
)

func TestRepoRoot(t *testing.T) {
	root, err := miniotest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "snapshot", "miniotest", "miniotest.go")); err != nil {
		t.Errorf("root %s: %v", root, err)
	}
}

func TestStartStopRestart(t *testing.T) {
	srv := miniotest.Start(t)
	u, err := url.Parse(srv.Endpoint)
	if err != nil || u.Hostname() != "127.0.0.1" {
		t.Fatalf("endpoint %s does not listen on 127.0.0.1", srv.Endpoint)
	}
	ctx := context.Background()
	s := srv.Store(t, "p")
	if _, err := s.PutIf(ctx, "k", []byte("v"), snapshot.Condition{IfAbsent: true}); err != nil {
		t.Fatal(err)
	}
	endpoint := srv.Endpoint
	srv.Stop()
	srv.Restart()
	if srv.Endpoint != endpoint {
		t.Errorf("restarted at %s, was %s", srv.Endpoint, endpoint)
	}
	if data, _, err := snapshot.ReadAll(ctx, s, "k"); err != nil || string(data) != "v" {
		t.Errorf("after restart: %q %v", data, err)
	}
	// Two servers side by side.
	other := miniotest.Start(t)
	if other.Endpoint == srv.Endpoint {
		t.Error("two servers on one port")
	}
	if _, err := other.Store(t, "p").Head(ctx, "k"); err == nil {
		t.Error("servers share data")
	}
}
