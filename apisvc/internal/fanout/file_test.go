package fanout

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/akutan/akutan/proto/viewpb"
)

// Views listed in files are found at start and followed as the files
// change: a view added is used, one removed is dropped, a fallback file's
// views are marked so, and an unreadable file keeps what it listed.
func TestFileDiscovery(t *testing.T) {
	checkLeaks(t)
	ds := makeFacts(14)
	a := startFake(t, viewpb.Space_HASH_SP, 0, 0, ds)
	b := startFake(t, viewpb.Space_HASH_SP, 0, 0, ds)
	remote := startFake(t, viewpb.Space_HASH_SP, 0, 0, ds)
	po := startFake(t, viewpb.Space_HASH_PO, 0, 0, ds)
	dir := t.TempDir()
	local, fallback := filepath.Join(dir, "views"), filepath.Join(dir, "fallback")
	write := func(path, body string) {
		t.Helper()
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write(local, "# dc1's views\n"+a.addr+"\n\n"+po.addr+"  # the HashPO view\n")
	write(fallback, remote.addr+"\n")
	cfg := testConfig()
	cfg.Files, cfg.FallbackFiles = []string{local}, []string{fallback}
	cfg.ResolveInterval = 20 * time.Millisecond
	f := open(t, cfg)
	if got, want := addrSet(f), sortedAddrs(a.addr, po.addr, remote.addr); !slices.Equal(got, want) {
		t.Fatalf("views at start %v, want %v", got, want)
	}
	if !viewOf(f, remote.addr).Fallback || viewOf(f, a.addr).Fallback {
		t.Fatal("the fallback file's view is not marked, or the local one is")
	}

	write(local, b.addr+"\n"+po.addr+"\n")
	waitFor(t, "b replacing a", func() bool { return slices.Equal(addrSet(f), sortedAddrs(b.addr, po.addr, remote.addr)) })
	if _, err := f.LookupS(ctxT(t), datasetMaxIdx, []uint64{1}); err != nil {
		t.Fatal(err)
	}

	if err := os.Remove(local); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // several re-reads
	if got := addrSet(f); !slices.Equal(got, sortedAddrs(b.addr, po.addr, remote.addr)) {
		t.Fatalf("a missing file dropped its views: %v", got)
	}
}

func sortedAddrs(addrs ...string) []string {
	slices.Sort(addrs)
	return addrs
}
