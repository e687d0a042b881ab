package viewsvc

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/akutan/akutan/proto/viewpb"
)

// fullDisk makes every write to a table file fail with ENOSPC while on:
// Pebble's flushes fail, as on a full disk. The MANIFEST is spared, because
// Pebble treats a failed MANIFEST write as fatal (the process exits; see
// DESIGN.md, "A full disk").
type fullDisk struct{ on errorfs.Toggle }

func (d *fullDisk) fs() vfs.FS {
	d.on.Injector = errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind.ReadOrWrite() != errorfs.OpIsWrite || !strings.HasSuffix(op.Path, ".sst") {
			return nil
		}
		return &os.PathError{Op: "write", Path: op.Path, Err: syscall.ENOSPC}
	})
	return errorfs.Wrap(vfs.Default, &d.on)
}

// waitStalled waits until Status reports the full disk, and checks that
// the view neither stopped nor moved on meanwhile.
func waitStalled(t *testing.T, v *View) Status {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := v.Status()
		if st.Err != nil && strings.Contains(st.Err.Error(), "no space left on device") {
			if st.State == viewpb.State_STOPPED {
				t.Fatalf("a full disk stopped the view for good: %v", st.Err)
			}
			// Stalled, not moving: the applier waits for a flush. (A
			// batch already past the wait when the flush failed may
			// still commit.)
			time.Sleep(300 * time.Millisecond)
			again := v.Status()
			if again.Err == nil {
				t.Fatalf("the error went away while the disk was full (applied %d)", again.LastApplied)
			}
			if again.LastApplied == st.LastApplied {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("applied %d then %d while the disk was full", st.LastApplied, again.LastApplied)
			}
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never reported the full disk: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestViewFullDisk: a view whose flushes fail with ENOSPC stalls with the
// error in Status, keeps serving the indexes it applied, and, once space
// returns, resumes (in place, or after a restart) and ends with the digest
// of a view that never failed.
func TestViewFullDisk(t *testing.T) {
	ds := makeDataset(3, 40_000, 40, true, 0)
	half := len(ds.entries) / 2
	last := uint64(len(ds.entries))

	ref := openView(t, testConfig(t, SpaceSP, FullRange))
	refLog := NewMemLog()
	refLog.Append(ds.entries...)
	start(t, ref, refLog)
	waitApplied(t, ref, last)
	digestAt := func(v *View, index uint64) Digest {
		t.Helper()
		d, err := v.Digest(t.Context(), index)
		if err != nil {
			t.Fatalf("digest at %d: %v", index, err)
		}
		return d
	}
	want := digestAt(ref, last)

	for _, restart := range []bool{false, true} {
		name := "resume in place"
		if restart {
			name = "restart while full"
		}
		t.Run(name, func(t *testing.T) {
			disk := &fullDisk{}
			cfg := testConfig(t, SpaceSP, FullRange)
			cfg.FS = disk.fs()
			cfg.MaxBatchOps = 500 // many commits, each a chance to stop
			v := openView(t, cfg)
			log := NewMemLog()
			log.Append(ds.entries[:half]...)
			r := start(t, v, log)
			waitApplied(t, v, uint64(half))

			disk.on.On()
			log.Append(ds.entries[half:]...)
			st := waitStalled(t, v)
			t.Logf("stalled at %d of %d: %v", st.LastApplied, last, st.Err)
			if st.LastApplied >= last {
				t.Fatalf("applied everything (%d) on a full disk", st.LastApplied)
			}
			// What it applied stays readable.
			if got, w := digestAt(v, uint64(half)), digestAt(ref, uint64(half)); !got.Equal(w) {
				t.Fatalf("digest at %d on a full disk %v, want %v", half, got, w)
			}

			if restart {
				closed := make(chan error, 1)
				go func() { r.stop(); closed <- v.Close() }()
				select {
				case err := <-closed:
					t.Logf("closed on a full disk: %v", err)
				case <-time.After(20 * time.Second):
					t.Fatal("Close hangs while the disk is full")
				}
				disk.on.Off()
				v = openView(t, cfg)
				if a := v.LastApplied(); a > st.LastApplied {
					t.Fatalf("reopened at %d, past the %d applied before", a, st.LastApplied)
				}
				t.Logf("reopened at durable index %d", v.LastApplied())
				start(t, v, log)
			} else {
				disk.on.Off()
			}
			waitApplied(t, v, last)
			if got := digestAt(v, last); !got.Equal(want) {
				t.Fatalf("digest at %d after the disk recovered %v, want %v", last, got, want)
			}
			if err := v.Status().Err; err != nil {
				t.Fatalf("status still reports %v", err)
			}
		})
	}
}
