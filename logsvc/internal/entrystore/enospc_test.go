package entrystore

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// fullDiskFS fails every write to files whose name ends with suffix with
// ENOSPC while toggle is on.
func fullDiskFS(toggle *errorfs.Toggle, suffix string) vfs.FS {
	toggle.Injector = errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind.ReadOrWrite() != errorfs.OpIsWrite || !strings.HasSuffix(op.Path, suffix) {
			return nil
		}
		return &os.PathError{Op: "write", Path: op.Path, Err: syscall.ENOSPC}
	})
	return errorfs.Wrap(vfs.Default, toggle)
}

func appendOne(s *Store, raftIndex uint64) error {
	b := s.NewBatch()
	if _, err := b.Append(raftIndex, [][]byte{[]byte("entry")}); err != nil {
		return err
	}
	b.Meta().RaftApplied = raftIndex
	return b.Commit()
}

// TestFlushFailsOnFullDisk: failed flushes show in DiskErr (so the FSM can
// stop before a commit blocks), and clear once a flush succeeds.
func TestFlushFailsOnFullDisk(t *testing.T) {
	var full errorfs.Toggle
	s, err := open(t.TempDir(), fullDiskFS(&full, ".sst"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := appendOne(s, 1); err != nil {
		t.Fatal(err)
	}
	full.On()
	if _, err := s.db.AsyncFlush(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.DiskErr() == nil {
		if time.Now().After(deadline) {
			t.Fatal("a failing flush never showed in DiskErr")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := s.DiskErr(); !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("DiskErr %v does not name the full disk", err)
	}
	full.Off()
	for s.DiskErr() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("flushes succeed again but DiskErr still says %v", s.DiskErr())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if f, l := s.Bounds(); f != 1 || l != 1 {
		t.Fatalf("bounds [%d, %d], want [1, 1]", f, l)
	}
}

// TestWALFailsOnFullDisk: Pebble panics when it cannot write its WAL;
// Commit returns that as an error naming the full disk instead of crashing
// the replica, and publishes nothing.
func TestWALFailsOnFullDisk(t *testing.T) {
	var full errorfs.Toggle
	s, err := open(t.TempDir(), fullDiskFS(&full, ".log"))
	if err != nil {
		t.Fatal(err)
	}
	// No Close: Pebble's commit pipeline is broken for good after this.
	if err := appendOne(s, 1); err != nil {
		t.Fatal(err)
	}
	full.On()
	deadline := time.Now().Add(10 * time.Second)
	var last uint64 = 1
	for {
		// The WAL is written behind the commit (no sync): the error shows
		// on a later one.
		err := appendOne(s, last+1)
		if err != nil {
			if !strings.Contains(err.Error(), "no space left on device") {
				t.Fatalf("commit failed with %v, which does not name the full disk", err)
			}
			if _, l := s.Bounds(); l != last {
				t.Fatalf("a failed commit published last %d, want %d", l, last)
			}
			return
		}
		last++
		if time.Now().After(deadline) {
			t.Fatal("commits never failed while the WAL could not be written")
		}
		time.Sleep(time.Millisecond)
	}
}
