package logsvc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/akutan/akutan/logsvc/logclient"
	"github.com/akutan/akutan/logsvc/logerr"
	"github.com/akutan/akutan/proto/logpb"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// logBinary builds services/akutan-log once per test run.
func logBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "akutan-log-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "akutan-log")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/akutan/akutan/services/akutan-log").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build akutan-log: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc is a log replica running as its own process.
type proc struct {
	t        testing.TB
	id       string
	raftAddr string
	grpcAddr string
	dataDir  string
	logPath  string
	extra    []string
	cmd      *exec.Cmd
	exited   chan error
}

func newProcs(t testing.TB, n int) []*proc {
	var ps []*proc
	var peers []string
	for i := 0; i < n; i++ {
		p := &proc{t: t, id: fmt.Sprintf("n%d", i+1), raftAddr: freeAddr(t), grpcAddr: freeAddr(t), dataDir: t.TempDir()}
		p.logPath = filepath.Join(t.TempDir(), p.id+".log")
		peers = append(peers, p.id+"="+p.raftAddr)
		ps = append(ps, p)
	}
	for _, p := range ps {
		p.extra = []string{"--bootstrap", "--peers", strings.Join(peers, ",")}
	}
	t.Cleanup(func() {
		for _, p := range ps {
			p.kill()
		}
	})
	return ps
}

func (p *proc) start() {
	p.t.Helper()
	args := append([]string{"--id", p.id, "--raft-addr", p.raftAddr, "--grpc-addr", p.grpcAddr, "--data-dir", p.dataDir,
		"--heartbeat-timeout", "500ms", "--election-timeout", "500ms", "--leader-lease-timeout", "250ms", "--log-level", "warn"}, p.extra...)
	out, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	p.cmd = exec.Command(logBinary(p.t), args...)
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.id, err)
	}
	p.exited = make(chan error, 1)
	go func(cmd *exec.Cmd, f *os.File) {
		err := cmd.Wait()
		f.Close()
		p.exited <- err
	}(p.cmd, out)
}

func (p *proc) signal(sig syscall.Signal) error {
	if p.cmd == nil {
		return nil
	}
	p.cmd.Process.Signal(sig)
	var err error
	select {
	case err = <-p.exited:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		err = <-p.exited
	}
	p.cmd = nil
	return err
}

func (p *proc) kill() { p.signal(syscall.SIGKILL) }
func (p *proc) stop() error {
	return p.signal(syscall.SIGTERM)
}

func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// waitReady waits until the replicas agree on a leader that has every
// replica's address.
func waitReady(t testing.TB, ps []*proc) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range ps {
			if p.cmd == nil {
				continue
			}
			cl, closeCl := client(t, p.grpcAddr)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			in, err := cl.Info(ctx, &logpb.InfoRequest{Linearizable: true})
			cancel()
			closeCl()
			if err != nil {
				continue
			}
			ok := true
			for _, m := range in.Members {
				ok = ok && m.GrpcAddress != ""
			}
			if ok {
				return in.LeaderId
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range ps {
		t.Logf("%s log:\n%s", p.id, p.logTail())
	}
	t.Fatal("cluster not ready within 30s")
	return ""
}

// waitCaughtUp waits until every running replica has applied index.
func waitCaughtUp(t testing.TB, ps []*proc, index uint64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for _, p := range ps {
		for {
			cl, closeCl := client(t, p.grpcAddr)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			in, err := cl.Info(ctx, &logpb.InfoRequest{LocalOnly: true})
			cancel()
			closeCl()
			if err == nil && in.LastIndex >= index {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not reach index %d: %v %v\n%s", p.id, index, in, err, p.logTail())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// lastIndex asks the replicas for the committed end of the log.
func lastIndex(t testing.TB, ps []*proc) uint64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range ps {
			cl, closeCl := client(t, p.grpcAddr)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			in, err := cl.Info(ctx, &logpb.InfoRequest{Linearizable: true})
			cancel()
			closeCl()
			if err == nil {
				return in.LastIndex
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no replica answered a linearizable Info within 30s")
	return 0
}

func procAddrs(ps []*proc) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.grpcAddr)
	}
	return out
}

// Test 1: 3 replicas, 8 concurrent clients, 10,000 appends; SIGKILL the
// leader mid-run. Every acknowledged append appears exactly once, in order,
// with no gap, on every replica, including the killed one after restart.
func TestKillLeaderUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	ps := newProcs(t, 3)
	for _, p := range ps {
		p.start()
	}
	waitReady(t, ps)

	const clients, perClient = 8, 1250
	type ack struct {
		seq   int
		index uint64
	}
	acks := make([][]ack, clients)
	var unknown, failed sync.Map
	var total, killAt = int64(0), int64(3000)
	var mu sync.Mutex
	killed := make(chan *proc, 1)
	killNow := make(chan struct{})
	go func() {
		<-killNow
		// Kill while appends are in flight: those get unknown outcomes.
		leader := waitReady(t, ps)
		for _, p := range ps {
			if p.id == leader {
				p.kill()
				killed <- p
			}
		}
	}()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			app := logclient.NewAppender(procAddrs(ps), logclient.DefaultAppenderConfig())
			defer app.Close()
			for i := 0; i < perClient; i++ {
				nonce := fmt.Sprintf("c%d-%d", c, i)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				idx, err := app.Append(ctx, pingEntry(nonce))
				cancel()
				switch {
				case err == nil:
					acks[c] = append(acks[c], ack{i, idx})
				case errors.Is(err, logerr.ErrUnknownOutcome):
					unknown.Store(nonce, err.Error())
					continue
				default:
					failed.Store(nonce, err.Error())
					continue
				}
				mu.Lock()
				total++
				if total == killAt {
					close(killNow)
				}
				mu.Unlock()
			}
		}(c)
	}
	wg.Wait()
	var victim *proc
	select {
	case victim = <-killed:
	default:
		t.Fatal("the leader was never killed")
	}
	nUnknown, nFailed := 0, 0
	unknown.Range(func(k, v any) bool {
		if nUnknown < 3 {
			t.Logf("unknown outcome %v: %v", k, v)
		}
		nUnknown++
		return true
	})
	failed.Range(func(k, v any) bool {
		if nFailed < 3 {
			t.Logf("failed append %v: %v", k, v)
		}
		nFailed++
		return true
	})
	t.Logf("acknowledged %d, unknown outcome %d, failed %d; killed leader %s", total, nUnknown, nFailed, victim.id)
	if total < clients*perClient-200 {
		t.Fatalf("only %d of %d appends acknowledged", total, clients*perClient)
	}

	victim.start()
	waitReady(t, ps)
	last := lastIndex(t, ps)
	waitCaughtUp(t, ps, last)

	var reference []logclient.Entry
	for _, p := range ps {
		entries := readAll(t, p.grpcAddr, 1, last)
		if uint64(len(entries)) != last {
			t.Fatalf("%s: %d entries, want %d", p.id, len(entries), last)
		}
		at := map[string]uint64{}
		for i, e := range entries {
			if e.Index != uint64(i+1) {
				t.Fatalf("%s: gap at %d", p.id, i+1)
			}
			n := nonceOf(t, e.Data)
			if prev, dup := at[n]; dup {
				t.Fatalf("%s: %s appears at %d and %d", p.id, n, prev, e.Index)
			}
			at[n] = e.Index
		}
		for c, as := range acks {
			for k, a := range as {
				n := fmt.Sprintf("c%d-%d", c, a.seq)
				if at[n] != a.index {
					t.Fatalf("%s: acknowledged %s at %d, found at %d", p.id, n, a.index, at[n])
				}
				if k > 0 && as[k-1].index >= a.index {
					t.Fatalf("client %d: append %d acknowledged at %d after %d", c, a.seq, a.index, as[k-1].index)
				}
			}
		}
		if reference == nil {
			reference = entries
			continue
		}
		for i := range entries {
			if !bytes.Equal(entries[i].Data, reference[i].Data) {
				t.Fatalf("%s differs from %s at %d", p.id, ps[0].id, i+1)
			}
		}
	}
}

// Test 5 (restart part): a replica whose data file has flipped bytes either
// refuses to start with a clear error or starts with correct data; either
// way no acknowledged entry is lost, and after the operator replaces it, it
// holds every entry again.
func TestCorruptDataFileAtRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	targets := []struct{ name, dir, prefix string }{
		{"entries-wal", "entries", ""},
		{"raft-wal", "raft-wal", ".wal"},
		{"entries-manifest", "entries", "MANIFEST"},
	}
	for _, target := range targets {
		t.Run(target.name, func(t *testing.T) {
			ps := newProcs(t, 3)
			for _, p := range ps {
				p.start()
			}
			waitReady(t, ps)
			app := logclient.NewAppender(procAddrs(ps), logclient.DefaultAppenderConfig())
			defer app.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var last uint64
			for i := 0; i < 50; i++ {
				batch := make([][]byte, 20)
				for j := range batch {
					batch[j] = pingEntry(fmt.Sprintf("e%d-%d", i, j))
				}
				first, err := app.AppendBatch(ctx, batch)
				if err != nil {
					t.Fatal(err)
				}
				last = first + 19
			}
			waitCaughtUp(t, ps, last)
			victim := ps[2]
			if err := victim.stop(); err != nil {
				t.Fatalf("stop: %v", err)
			}
			file := largestFile(t, filepath.Join(victim.dataDir, target.dir), target.prefix)
			flipBytes(t, file)
			t.Logf("flipped bytes in %s", strings.TrimPrefix(file, victim.dataDir))

			victim.start()
			select {
			case err := <-victim.exited:
				victim.cmd = nil
				logText := victim.logTail()
				t.Logf("replica refused to start (%v):\n%s", err, logText)
				if strings.Contains(logText, "panic") || strings.Contains(logText, "goroutine ") {
					t.Fatalf("replica panicked on a corrupt file")
				}
				msg := strings.ToLower(strings.ReplaceAll(logText, victim.dataDir, "DATA"))
				if !strings.Contains(msg, "corrupt") && !strings.Contains(msg, "checksum") && !strings.Contains(msg, "malformed") {
					t.Fatalf("exit without a clear corruption message")
				}
			case <-time.After(5 * time.Second):
				t.Logf("replica started despite the flipped bytes; checking its data")
				waitCaughtUp(t, ps, last)
				checkSame(t, ps, last)
				return
			}

			// The others still hold everything and take appends.
			if _, err := app.AppendBatch(ctx, [][]byte{pingEntry("after")}); err != nil {
				t.Fatalf("append with a replica down: %v", err)
			}
			last++
			waitCaughtUp(t, ps[:2], last)
			checkSame(t, ps[:2], last)

			// Replace the broken replica: remove it, wipe it, add it back.
			cl := mustClient(t, ps[0].grpcAddr)
			if _, err := cl.RemoveServer(ctx, &logpb.RemoveServerRequest{Id: victim.id}); err != nil {
				t.Fatalf("remove: %v", err)
			}
			os.RemoveAll(victim.dataDir)
			victim.extra = nil
			victim.start()
			if _, err := cl.AddVoter(ctx, &logpb.AddVoterRequest{Id: victim.id, RaftAddress: victim.raftAddr, GrpcAddress: victim.grpcAddr}); err != nil {
				t.Fatalf("add back: %v", err)
			}
			waitCaughtUp(t, ps, last)
			checkSame(t, ps, last)
		})
	}
}

func checkSame(t testing.TB, ps []*proc, last uint64) {
	t.Helper()
	ref := readAll(t, ps[0].grpcAddr, 1, last)
	for _, p := range ps[1:] {
		got := readAll(t, p.grpcAddr, 1, last)
		if len(got) != len(ref) {
			t.Fatalf("%s has %d entries, want %d", p.id, len(got), len(ref))
		}
		for i := range ref {
			if !bytes.Equal(got[i].Data, ref[i].Data) {
				t.Fatalf("%s differs at %d", p.id, i+1)
			}
		}
	}
}

// largestFile returns the largest data file in dir whose name starts or
// ends with affix.
func largestFile(t testing.TB, dir, affix string) string {
	t.Helper()
	type f struct {
		path string
		size int64
	}
	var files []f
	filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() && (strings.HasPrefix(info.Name(), affix) || strings.HasSuffix(info.Name(), affix)) &&
			!strings.HasPrefix(info.Name(), "OPTIONS") && !strings.HasPrefix(info.Name(), "LOCK") {
			files = append(files, f{path, info.Size()})
		}
		return nil
	})
	if len(files) == 0 {
		t.Fatalf("no files in %s", dir)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].size > files[j].size })
	return files[0].path
}

func flipBytes(t testing.TB, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mid := len(b) / 2
	for i := mid; i < mid+16 && i < len(b); i++ {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
