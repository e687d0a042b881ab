package logsvc

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/akutan/akutan/internal/fulldisk"
	"github.com/akutan/akutan/logsvc/logclient"
	"github.com/akutan/akutan/proto/logpb"
)

// TestReplicaFullDisk: 3 replicas, one with its data dir on a small tmpfs
// that fills up. That replica stops with a clear error (its appends answer
// Unavailable naming "no space left on device", or the process exits),
// writes go on through the other two, and once space is freed a restart
// catches it up: every acknowledged entry is on every replica, in order.
func TestReplicaFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	// Room for raft-wal's preallocated 64 MiB segment and the entry
	// store's preallocated WAL (1.1 x its 64 MiB memtable), and little more.
	mnt := fulldisk.Mount(t, "160m")
	ps := newProcs(t, 3)
	victim := ps[2]
	victim.dataDir = filepath.Join(mnt, "data")
	// Kill before the tmpfs is unmounted (cleanups run last first).
	t.Cleanup(victim.kill)
	for _, p := range ps {
		p.start()
	}
	waitReady(t, ps)
	filler := fulldisk.Fill(t, mnt, 0)

	app := logclient.NewAppender(procAddrs(ps), logclient.DefaultAppenderConfig())
	defer app.Close()
	pad := strings.Repeat("x", 128<<10)
	acked := map[uint64][]byte{}
	halted := func() (bool, string) {
		select {
		case err := <-victim.exited:
			victim.cmd = nil
			return true, fmt.Sprintf("exited: %v", err)
		default:
		}
		cl, closeCl := client(t, victim.grpcAddr)
		defer closeCl()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		in, err := cl.Info(ctx, &logpb.InfoRequest{LocalOnly: true})
		if err == nil && strings.Contains(in.Error, "no space left on device") {
			return true, in.Error
		}
		return false, ""
	}
	stoppedAt, after := -1, 0
	for i := 0; i < 2000 && after < 100; i++ {
		e := pingEntry(fmt.Sprintf("e%d-%s", i, pad))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		idx, err := app.Append(ctx, e)
		cancel()
		if err != nil {
			t.Logf("append %d: %v", i, err) // unknown outcomes may occur at the leader's step-down
			continue
		}
		acked[idx] = e
		if stoppedAt >= 0 {
			after++
			continue
		}
		if i%20 == 0 {
			if ok, why := halted(); ok {
				stoppedAt = i
				t.Logf("the full replica stopped after %d appends: %s", i, why)
			}
		}
	}
	if stoppedAt < 0 {
		t.Fatalf("the replica on the full disk never stopped\n%s", victim.logTail())
	}
	if after < 100 {
		t.Fatalf("only %d appends were acknowledged after the replica stopped", after)
	}
	if victim.cmd != nil {
		// Still running: it refuses appends, naming the cause.
		cl, closeCl := client(t, victim.grpcAddr)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := cl.Append(ctx, &logpb.AppendRequest{Entries: [][]byte{pingEntry("refused")}})
		cancel()
		closeCl()
		if st := status.Convert(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "no space left on device") {
			t.Fatalf("append on the full replica: %v; want Unavailable naming the full disk", err)
		}
		if err := victim.stop(); err != nil {
			t.Logf("stopped the full replica: %v", err)
		}
	} else {
		t.Logf("the full replica's log ends:\n%s", victim.logTail())
	}

	// Space returns; a restart recovers from the data dir and catches up.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	victim.start()
	last := lastIndex(t, ps[:2])
	waitCaughtUp(t, ps, last)
	checkSame(t, ps, last)
	got := readAll(t, victim.grpcAddr, 1, last)
	for idx, e := range acked {
		if idx < 1 || idx > uint64(len(got)) || !bytes.Equal(got[idx-1].Data, e) {
			t.Fatalf("acknowledged entry %d is missing or differs on the replica that was full", idx)
		}
	}
	t.Logf("%d appends acknowledged, %d after the replica stopped; all present at %d entries", len(acked), after, last)
}
