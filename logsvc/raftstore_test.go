package logsvc

import (
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// A replica that cleared the uncommitted end of its Raft log (after losing
// an election) must open its data dir again. raft-wal v0.4.0 sealed the
// last segment without its index block there, and the replica then panicked
// on every restart ("sealed segment has no index block"; raft-wal#31, found
// by TestChaos).
func TestRaftStoreReopensAfterSuffixDelete(t *testing.T) {
	for _, kind := range []string{StoreWAL, StorePebble, StoreBolt} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			logs, _, closer, err := openRaftStore(kind, dir, hclog.NewNullLogger())
			if err != nil {
				t.Fatal(err)
			}
			var entries []*raft.Log
			for i := uint64(1); i <= 10; i++ {
				entries = append(entries, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: []byte{byte(i)}})
			}
			if err := logs.StoreLogs(entries); err != nil {
				t.Fatal(err)
			}
			if err := logs.DeleteRange(9, 10); err != nil {
				t.Fatal(err)
			}
			if err := closer.Close(); err != nil {
				t.Fatal(err)
			}
			opened := make(chan error, 1)
			go func() {
				logs, _, closer, err := openRaftStore(kind, dir, hclog.NewNullLogger())
				if err == nil {
					defer closer.Close()
					var l raft.Log
					if err = logs.GetLog(1, &l); err == nil {
						var last uint64
						if last, err = logs.LastIndex(); err == nil && last != 8 {
							t.Errorf("last index %d after deleting 9..10, want 8", last)
						}
					}
				}
				opened <- err
			}()
			select {
			case err := <-opened:
				if err != nil {
					t.Fatalf("reopen after a suffix delete: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("reopen after a suffix delete hangs")
			}
		})
	}
}
