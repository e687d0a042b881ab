package logsvc

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/akutan/akutan/logsvc/logclient"
	"github.com/akutan/akutan/proto/logpb"
	"github.com/akutan/akutan/snapshot"
)

// A log restored from the archive at N starts as one voter with last index
// N; its next append gets N+1; a second replica joins as a voter and
// catches up; readers get 1..N from the archive and the rest from the log.
func TestRestoreDataDir(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	src := newDirStore(t)
	// The original cluster: 1000 entries, a version change at 400,
	// archived.
	orig := newCluster(t, 1, func(i int, cfg *Config) {
		cfg.ArchiveStore = src
		cfg.ArchiveInterval = 20 * time.Millisecond
		cfg.Segments = SegmentConfig{SegmentBytes: 4 << 10, SegmentAge: time.Hour}
		cfg.MaxSupportedVersion = 2
	})
	app := logclient.NewAppender(orig.addrs(), logclient.DefaultAppenderConfig())
	for i := 0; i < 1000; i++ {
		e := pingEntry(strconv.Itoa(i))
		if i == 399 {
			e = versionChangeEntry(1, 2)
		} else if i >= 400 {
			p, _ := protoPing(2, strconv.Itoa(i))
			e = p
		}
		if _, err := app.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	app.Close()
	if resp, err := mustClient(t, orig.addrs()[0]).ArchiveNow(ctx, &logpb.ArchiveNowRequest{}); err != nil || resp.ArchivedThrough != 1000 {
		t.Fatalf("archive now: %v %v", resp, err)
	}
	orig.close()

	const n = 700
	cfg := testConfig(t, "r1")
	var calls int
	if err := RestoreDataDir(ctx, cfg.DataDir, RestoreConfig{ID: cfg.ID, RaftAddr: cfg.RaftAddr, MaxSupportedVersion: 2}, src, n, func(done, total uint64) {
		calls++
		if total != n || done > n {
			t.Errorf("progress %d/%d", done, total)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if calls == 0 {
		t.Error("no progress reported")
	}
	// Never over existing data.
	if err := RestoreDataDir(ctx, cfg.DataDir, RestoreConfig{ID: cfg.ID, RaftAddr: cfg.RaftAddr}, src, n, nil); err == nil {
		t.Fatal("restore over a data dir succeeded")
	}
	// The restored log archives into a new prefix: a new timeline.
	dst := snapshot.Prefixed(src, "restored")
	cfg.Bootstrap = true // ignored: the dir holds Raft state
	cfg.ArchiveStore = dst
	cfg.ArchiveInterval = 20 * time.Millisecond
	cfg.MaxSupportedVersion = 2
	c := &cluster{t: t, cfgs: []Config{cfg}, servers: make([]*Server, 1)}
	t.Cleanup(c.close)
	c.start(0)
	c.waitLeader()
	in := info(t, cfg.GRPCAddr, true)
	if in.FirstIndex != n+1 || in.LastIndex != n || in.ArchivedThrough != n || in.LogVersion != 2 {
		t.Fatalf("restored log: %+v", in)
	}
	app = logclient.NewAppender(c.addrs(), logclient.DefaultAppenderConfig())
	defer app.Close()
	p, _ := protoPing(2, "after")
	if idx, err := app.Append(ctx, p); err != nil || idx != n+1 {
		t.Fatalf("first append after restore: %d %v", idx, err)
	}
	// A second replica joins and catches up through a Raft snapshot.
	cfg2 := testConfig(t, "r2")
	cfg2.MaxSupportedVersion = 2
	c.cfgs = append(c.cfgs, cfg2)
	c.servers = append(c.servers, nil)
	c.start(1)
	if _, err := mustClient(t, cfg.GRPCAddr).AddVoter(ctx, &logpb.AddVoterRequest{Id: "r2", RaftAddress: cfg2.RaftAddr, GrpcAddress: cfg2.GRPCAddr}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		p, _ := protoPing(2, "more"+strconv.Itoa(i))
		if _, err := app.Append(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	c.waitApplied(n + 51)
	if first, _ := c.servers[1].store.Bounds(); first != n+1 {
		t.Fatalf("joined replica starts at %d", first)
	}
	// Read from 1 on the joined replica, with the original archive.
	r := logclient.NewReader([]string{cfg2.GRPCAddr}).UseArchive(src)
	defer r.Close()
	var got []logclient.Entry
	done := errors.New("done")
	err := r.Stream(ctx, 1, func(es []logclient.Entry) error {
		got = append(got, es...)
		if got[len(got)-1].Index >= n+51 {
			return done
		}
		return nil
	})
	if err != done || len(got) != n+51 {
		t.Fatalf("read: %d entries, %v", len(got), err)
	}
	for i, e := range got {
		want := strconv.Itoa(i)
		switch {
		case i == 399:
			want = ""
		case i == n:
			want = "after"
		case i > n:
			want = "more" + strconv.Itoa(i-n-1)
		}
		if e.Index != uint64(i+1) || nonceOf(t, e.Data) != want {
			t.Fatalf("entry %d: %d %q, want %q", i+1, e.Index, nonceOf(t, e.Data), want)
		}
	}
	// The new timeline archives from N+1 under its own prefix.
	if resp, err := mustClient(t, cfg2.GRPCAddr).ArchiveNow(ctx, &logpb.ArchiveNowRequest{}); err != nil || resp.ArchivedThrough != n+51 {
		t.Fatalf("archive now after restore: %v %v", resp, err)
	}
	cat, _, err := snapshot.LoadLogCatalog(ctx, dst)
	if err != nil || cat.FirstArchived() != n+1 || cat.ArchivedThrough() != n+51 {
		t.Fatalf("new timeline's catalog: %d..%d %v", cat.FirstArchived(), cat.ArchivedThrough(), err)
	}
}
