package localstack

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/akutan/akutan/logsvc/logclient"
	"github.com/akutan/akutan/snapshot"
	_ "github.com/akutan/akutan/snapshot/s3store" // the s3:// scheme of OpenStore
)

// storeURL is the stack's bucket prefix (lib.sh), or the restored
// timeline's once restore.sh has run.
func (s *stack) storeURL() string {
	if b, err := os.ReadFile(filepath.Join(s.dir, "store.url")); err == nil {
		return strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("s3://akutan/stack?endpoint=http://127.0.0.1:%d&region=us-east-1&path_style=true", s.base+900)
}

func (s *stack) logAddrs() string {
	return fmt.Sprintf("127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", s.base+101, s.base+102, s.base+103)
}

// mustCLI runs the CLI and fails the test unless it exits 0.
func (s *stack) mustCLI(stdin string, args ...string) string {
	s.t.Helper()
	out, code := s.cli(stdin, args...)
	if code != 0 {
		s.t.Fatalf("akutan %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// people writes n facts about n subjects named prefix0..prefixN-1.
func people(prefix string, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "<%s%d> <age> %d\n<%s%d> <knows> <%s%d>\n", prefix, i, i, prefix, i, prefix, (i+1)%n)
	}
	return b.String()
}

// lookupAll returns the facts of every subject in subjects, as the CLI
// prints them, at the given index flag ("--latest" or "--index N").
func (s *stack) lookupAll(dc int, subjects []string, at ...string) map[string][]string {
	got := map[string][]string{}
	for _, subj := range subjects {
		out, code := s.cli("", append([]string{"lookup", "--api", s.api(dc), subj}, at...)...)
		switch {
		case code != 0 && strings.Contains(out, "names no node"):
			got[subj] = nil // the name did not exist yet
		case code != 0:
			s.t.Fatalf("lookup %s in dc%d: exit %d\n%s", subj, dc, code, out)
		default:
			got[subj] = lines(out)
		}
	}
	return got
}

// The disaster-recovery drill of the README, as a user runs it: write, back
// up, lose every data dir but the bucket's, restore a new cluster at an
// earlier index and at the newest archived index, and read back exactly
// what was acknowledged at those indexes.
func TestDisasterRecoveryDrill(t *testing.T) {
	s := newStack(t)
	s.mustRun("up.sh")

	first := s.mustCLI(people("a", 300), "insert", "--api", s.api(1))
	n1 := indexOf(t, first)
	second := s.mustCLI(people("b", 300)+"<a0> <age> 1000\n", "insert", "--api", s.api(2))
	n2 := indexOf(t, second)
	s.mustCLI("<a1> <knows> <a2>\n", "delete", "--api", s.api(3))
	n3 := n2 + 1
	subjects := []string{"<a0>", "<a1>", "<a299>", "<b0>", "<b150>"}
	atN1 := s.lookupAll(1, subjects, "--index", fmt.Sprint(n1))
	atN3 := s.lookupAll(1, subjects, "--index", fmt.Sprint(n3))
	if len(atN1["<b0>"]) != 0 || len(atN3["<b0>"]) == 0 {
		t.Fatalf("unexpected reads before the disaster: at %d %v, at %d %v", n1, atN1, n3, atN3)
	}

	out := s.mustCLI("", "backup", "now", "--api", s.apiAddrs(), "--log", s.logAddrs())
	if !strings.Contains(out, fmt.Sprintf("archived through index %d", n3)) {
		t.Fatalf("backup now:\n%s", out)
	}
	list := s.mustCLI("", "backup", "list", "--store", s.storeURL())
	t.Logf("backup list:\n%s", list)
	if !strings.Contains(list, fmt.Sprintf("..%d", n3)) || !strings.Contains(list, "restorable") {
		t.Fatalf("backup list:\n%s", list)
	}
	out = s.mustCLI("", "backup", "verify", "--deep", "--store", s.storeURL())
	if !strings.Contains(out, "ok") {
		t.Fatalf("verify:\n%s", out)
	}

	// Truncation: the coordinator discards the archived, checkpointed
	// prefix; a new view with no checkpoint replays the archive and then the
	// log, and matches the live views.
	out = s.mustCLI("", "log", "truncate", "--delay", "0s", "--log", s.logAddrs(), "--store", s.storeURL())
	t.Logf("truncate:\n%s", out)
	info := s.mustCLI("", "log", "info", "--linearizable", "--log", s.logAddrs())
	if !strings.Contains(info, fmt.Sprintf("first index %d,", n3+1)) {
		t.Fatalf("after truncation:\n%s", info)
	}
	s.checkArchiveReplay(n3)
	// Reads below the log's first index come from the archive.
	tail := s.mustCLI("", "log", "tail", "--from", "1", "--log", s.logAddrs(), "--store", s.storeURL())
	if ls := strings.Split(strings.TrimSpace(tail), "\n"); len(ls) != int(n3) || !strings.HasPrefix(ls[0], "1\t") {
		t.Fatalf("log tail from 1 after truncation:\n%s", tail)
	}

	for _, c := range []struct {
		at   string
		want map[string][]string
	}{{fmt.Sprint(n1), atN1}, {"latest", atN3}} {
		// The disaster: every server and its disk is gone; the bucket stays.
		s.mustRun("down.sh")
		for _, p := range []string{"dc1", "dc2", "dc3", "store.url", "restored"} {
			os.RemoveAll(filepath.Join(s.dir, p))
		}
		t0 := time.Now()
		out := s.mustRun("restore.sh", c.at)
		t.Logf("restore at %s took %v", c.at, time.Since(t0))
		s.mustRun("up.sh")
		for dc := 1; dc <= 3; dc++ {
			got := s.lookupAll(dc, subjects, "--latest")
			for _, subj := range subjects {
				if strings.Join(got[subj], "|") != strings.Join(c.want[subj], "|") {
					t.Fatalf("restored at %s, dc%d: %s = %q, want %q\nrestore said:\n%s", c.at, dc, subj, got[subj], c.want[subj], out)
				}
			}
		}
		// The restored cluster takes writes, after the restored index.
		w := s.mustCLI("<new> <age> 1\n", "insert", "--api", s.api(2))
		want := n1
		if c.at == "latest" {
			want = n3
		}
		if got := indexOf(t, w); got != want+1 {
			t.Fatalf("first write after restoring at %d got index %d", want, got)
		}
	}
}

// Object storage goes away for a while: the log and the views keep taking
// writes and serving reads; archiving and checkpoints resume when it is back,
// and nothing acknowledged is lost. Then a corrupted object is reported by
// verify.
func TestObjectStoreOutage(t *testing.T) {
	s := newStack(t)
	s.env = append(s.env, "AKUTAN_CHECKPOINT_INTERVAL=1s")
	s.mustRun("up.sh")
	s.mustCLI(people("p", 50), "insert", "--api", s.api(1))
	s.mustCLI("", "backup", "now", "--api", s.apiAddrs(), "--log", s.logAddrs())

	minio := s.pid("minio")
	if err := syscall.Kill(minio, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			syscall.Kill(minio, syscall.SIGCONT)
		}
	}
	defer resume()
	var last uint64
	for i := range 20 {
		out := s.mustCLI(fmt.Sprintf("<q%d> <age> %d\n", i, i), "insert", "--api", s.api(1+i%3))
		last = indexOf(t, out)
	}
	out := s.mustCLI("", "lookup", "--api", s.api(2), "<q19>", "--index", fmt.Sprint(last))
	if !strings.Contains(out, "<q19> <age> 19") {
		t.Fatalf("lookup while the store is down:\n%s", out)
	}
	if out, code := s.cli("", "backup", "now", "--api", s.apiAddrs(), "--log", s.logAddrs(), "--timeout", "5s"); code == 0 {
		t.Fatalf("backup now succeeded with the store down:\n%s", out)
	}
	resume()

	// Once the store is back, everything acknowledged gets archived.
	deadline := time.Now().Add(90 * time.Second)
	for {
		out, code := s.cli("", "backup", "now", "--api", s.apiAddrs(), "--log", s.logAddrs(), "--timeout", "30s")
		if code == 0 && indexOf(t, out) >= last {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("archive did not catch up after the outage:\n%s", out)
		}
		time.Sleep(time.Second)
	}
	verify := s.mustCLI("", "backup", "verify", "--deep", "--store", s.storeURL())
	if !strings.Contains(verify, "ok") {
		t.Fatalf("verify after the outage:\n%s", verify)
	}
	for i := range 20 {
		out := s.mustCLI("", "lookup", "--api", s.api(3), fmt.Sprintf("<q%d>", i), "--latest")
		if !strings.Contains(out, fmt.Sprintf("<q%d> <age> %d", i, i)) {
			t.Fatalf("lost <q%d> after the outage:\n%s", i, out)
		}
	}

	s.killLogLeaderWhileArchiving()

	// A corrupted object: verify names it and fails; a deep verify, which
	// restores from it, refuses it too.
	ctx := t.Context()
	store, lc := s.logCatalog()
	if len(lc.Segments) == 0 {
		t.Fatal("the log catalog is empty")
	}
	seg := lc.Segments[len(lc.Segments)-1]
	data, _, err := snapshot.ReadAll(ctx, store, seg.Key)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x40
	if _, err := store.Put(ctx, seg.Key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	out, code := s.cli("", "backup", "verify", "--store", s.storeURL())
	if code == 0 || !strings.Contains(out, "PROBLEM "+seg.Key) {
		t.Fatalf("verify of a corrupted segment: exit %d\n%s", code, out)
	}
}

// checkArchiveReplay starts a view of the whole HashPO space on an empty
// data dir, with the archive but no checkpoint store, and checks that at
// index n it holds what dc1's two HashPO views hold together.
func (s *stack) checkArchiveReplay(n uint64) {
	t := s.t
	cmd := exec.Command(filepath.Join(s.bin, "akutan-view"), "--space", "po", "--data-dir", filepath.Join(t.TempDir(), "replay"),
		"--log", s.logAddrs(), "--archive", s.storeURL(), "--listen", fmt.Sprintf("127.0.0.1:%d", s.base+999), "--log-level", "warn",
		"--checkpoint-interval", "0") // a flag beats AKUTAN_CHECKPOINT_INTERVAL of the stack's environment
	cmd.Env = append(s.env, "AWS_ACCESS_KEY_ID=akutan-local", "AWS_SECRET_ACCESS_KEY=akutan-local-secret")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	got := digest(t, fmt.Sprintf("127.0.0.1:%d", s.base+999), n)
	p0, p1 := digest(t, s.view(1, 3), n), digest(t, s.view(1, 4), n)
	if got.Facts == 0 || got.Facts != p0.Facts+p1.Facts || got.Sum1 != p0.Sum1+p1.Sum1 || got.Sum2 != p0.Sum2+p1.Sum2 {
		t.Fatalf("replayed from the archive: %v; live views %v + %v\n%s", got, p0, p1, stderr.String())
	}
}

var leaderRE = regexp.MustCompile(`leader: log-dc(\d) `)

// killLogLeaderWhileArchiving SIGKILLs the log leader (the replica that
// archives) under write load, restarts it, and checks that the archive ends
// up holding exactly the log: every index once, with the same bytes.
func (s *stack) killLogLeaderWhileArchiving() {
	t := s.t
	m := leaderRE.FindStringSubmatch(s.mustCLI("", "log", "info", "--linearizable", "--log", s.logAddrs()))
	if m == nil {
		t.Fatal("no log leader")
	}
	dc, _ := strconv.Atoi(m[1])
	done := make(chan int)
	go func() {
		ok := 0
		for i := range 40 {
			if _, code := s.cli(fmt.Sprintf("<k%d> <age> %d\n", i, i), "insert", "--api", s.api(1+i%3)); code == 0 {
				ok++
			}
		}
		done <- ok
	}()
	time.Sleep(300 * time.Millisecond)
	if err := syscall.Kill(s.pid(fmt.Sprintf("log-dc%d", dc)), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ok := <-done
	s.mustRun("dc.sh", "up", fmt.Sprintf("dc%d", dc))
	t.Logf("killed log-dc%d while archiving; %d of 40 writes acknowledged", dc, ok)

	var last uint64
	deadline := time.Now().Add(90 * time.Second)
	for {
		// Exit code 3 (a replica still catching up) still describes the log.
		info, _ := s.cli("", "log", "info", "--linearizable", "--log", s.logAddrs())
		if i := strings.Index(info, "last index"); i >= 0 {
			fmt.Sscanf(info[i:], "last index %d", &last)
		}
		out, code := s.cli("", "backup", "now", "--api", s.apiAddrs(), "--log", s.logAddrs(), "--timeout", "30s")
		if code == 0 && last > 0 && indexOf(t, out) >= last {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("archive did not catch up after the leader was killed:\n%s", out)
		}
		time.Sleep(time.Second)
	}

	ctx := t.Context()
	store, lc := s.logCatalog()
	archived := map[uint64][]byte{}
	for _, ref := range lc.Segments {
		entries, err := snapshot.ReadSegment(ctx, store, ref)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if _, dup := archived[e.Index]; dup {
				t.Fatalf("index %d archived twice", e.Index)
			}
			archived[e.Index] = e.Data
		}
	}
	r := logclient.NewReader(strings.Split(s.logAddrs(), ","))
	defer r.Close()
	stop := errors.New("stop")
	err := r.Stream(ctx, 1, func(es []logclient.Entry) error {
		for _, e := range es {
			if got, ok := archived[e.Index]; !ok || !bytes.Equal(got, e.Data) {
				return fmt.Errorf("index %d: archived %v, log and archive differ", e.Index, ok)
			}
			if e.Index == last {
				return stop
			}
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("archive against log: %v", err)
	}
	if uint64(len(archived)) < last {
		t.Fatalf("archive holds %d entries, the log %d", len(archived), last)
	}
}

// logCatalog opens the stack's store from the test process and reads the
// log catalog.
func (s *stack) logCatalog() (snapshot.Store, *snapshot.LogCatalog) {
	t := s.t
	t.Setenv("AWS_ACCESS_KEY_ID", "akutan-local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "akutan-local-secret")
	store, err := snapshot.OpenStore(t.Context(), s.storeURL())
	if err != nil {
		t.Fatal(err)
	}
	lc, _, err := snapshot.LoadLogCatalog(t.Context(), store)
	if err != nil {
		t.Fatal(err)
	}
	return store, lc
}
