package entrystore

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

func fill(t *testing.T, s *Store, n int) {
	t.Helper()
	b := s.NewBatch()
	var es [][]byte
	for i := 0; i < n; i++ {
		es = append(es, []byte(fmt.Sprintf("entry-%d", i+1)))
	}
	first, err := b.Append(7, es)
	if err != nil || first != 1 {
		t.Fatalf("append: %d %v", first, err)
	}
	b.Meta().RaftApplied = 7
	b.Meta().ArchivedThrough = 3
	b.Meta().Members["n1"] = "127.0.0.1:1"
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestAppendDiscardReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, s, 10)
	b := s.NewBatch()
	if err := b.DiscardBefore(4); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(3, 10, 1<<20); !errors.Is(err, ErrBelowFirst) {
		t.Fatalf("read below first: %v", err)
	}
	s.Close()
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := s.Meta()
	if m.First != 4 || m.Last != 10 || m.RaftApplied != 7 || m.Members["n1"] != "127.0.0.1:1" {
		t.Fatalf("reopened meta %+v", m)
	}
	es, err := s.Read(4, 3, 1<<20)
	if err != nil || len(es) != 3 || string(es[0].Data) != "entry-4" || es[2].Index != 6 {
		t.Fatalf("read %v %v", es, err)
	}
}

func snapshotBytes(t *testing.T, s *Store) []byte {
	t.Helper()
	snap := s.Snapshot()
	defer snap.Close()
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSnapshotRestore(t *testing.T) {
	src, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	fill(t, src, 1000)
	data := snapshotBytes(t, src)

	dst, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	fill(t, dst, 3)
	if err := dst.Restore(bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	if m := dst.Meta(); m.Last != 1000 || m.RaftApplied != 7 || m.ArchivedThrough != 3 {
		t.Fatalf("restored meta %+v", m)
	}
	es, err := dst.Read(999, 10, 1<<20)
	if err != nil || len(es) != 2 || string(es[1].Data) != "entry-1000" {
		t.Fatalf("restored entries %v %v", es, err)
	}
	head, err := ReadSnapshotMeta(bytes.NewReader(data))
	if err != nil || head.Last != 1000 {
		t.Fatalf("snapshot meta %+v %v", head, err)
	}
}

// A corrupt or truncated snapshot is refused; the store is then marked
// broken until restart, and a reopened store is empty, never half-restored.
func TestSnapshotCorruption(t *testing.T) {
	src, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	fill(t, src, 500)
	data := snapshotBytes(t, src)

	flipped := append([]byte(nil), data...)
	flipped[len(flipped)/2] ^= 0x40
	cases := map[string][]byte{
		"truncated":  data[:len(data)-10],
		"flipped":    flipped,
		"no header":  []byte("garbage"),
		"empty":      nil,
		"no trailer": data[:len(data)-12],
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			dst, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			fill(t, dst, 3)
			err = dst.Restore(bytes.NewReader(bad), nil)
			if !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("restore: %v, want ErrBadSnapshot", err)
			}
			dst.Close()
			dst, err = Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			m := dst.Meta()
			// A refusal before any change keeps the old state; one after
			// the restore began leaves an empty store.
			if !(m.Last == 3 && m.RaftApplied == 7) && !(m.Last == 0 && m.RaftApplied == 0) {
				t.Fatalf("store after failed restore: %+v", m)
			}
		})
	}
}
