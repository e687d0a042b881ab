package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/logsvc"
	"github.com/akutan/akutan/logsvc/logclient"
	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/proto/viewpb"
	"github.com/akutan/akutan/viewsvc"
)

func TestFlags(t *testing.T) {
	o, err := parseFlags([]string{"--space", "po", "--range-start", "0x10", "--range-end", "0x8000000000000000",
		"--data-dir", "d", "--log", "a:1, b:2"})
	if err != nil || o.cfg.Space != viewsvc.SpacePO || o.cfg.Range != (viewsvc.HashRange{Start: 16, End: 1 << 63}) ||
		len(o.logAddrs) != 2 || o.listen != "127.0.0.1:0" {
		t.Errorf("parse: %+v %v", o, err)
	}
	o, err = parseFlags([]string{"--space", "sp", "--data-dir", "d", "--log", "a:1"})
	if err != nil || o.cfg.Range != viewsvc.FullRange {
		t.Errorf("default range: %+v %v", o.cfg.Range, err)
	}
	// Without a store, no checkpoints, and a warning says so.
	if o.cfg.CheckpointInterval != 0 || !strings.Contains(checkpointWarning(o), "no --store") {
		t.Errorf("no store: checkpoint interval %v, warning %q", o.cfg.CheckpointInterval, checkpointWarning(o))
	}
	// With a store, checkpoints by default, and no warning.
	o, err = parseFlags([]string{"--space", "sp", "--data-dir", "d", "--log", "a:1", "--store", "/tmp/b"})
	if err != nil || o.cfg.CheckpointInterval != defaultCheckpointInterval || checkpointWarning(o) != "" {
		t.Errorf("store: checkpoint interval %v (want %v), warning %q, err %v", o.cfg.CheckpointInterval, defaultCheckpointInterval, checkpointWarning(o), err)
	}
	// Turned off explicitly, with a warning.
	o, err = parseFlags([]string{"--space", "sp", "--data-dir", "d", "--log", "a:1", "--store", "/tmp/b", "--checkpoint-interval", "0"})
	if err != nil || o.cfg.CheckpointInterval != 0 || !strings.Contains(checkpointWarning(o), "checkpoints are off") {
		t.Errorf("checkpoints off: interval %v, warning %q, err %v", o.cfg.CheckpointInterval, checkpointWarning(o), err)
	}
	o, err = parseFlags([]string{"--space", "sp", "--data-dir", "d", "--log", "a:1", "--store", "/tmp/b",
		"--cluster", "dc2", "--checkpoint-interval", "5m", "--checkpoint-entries", "1000", "--stop-at", "77"})
	if err != nil || o.store != "/tmp/b" || o.cfg.Cluster != "dc2" || o.cfg.CheckpointInterval != 5*time.Minute ||
		o.cfg.CheckpointEntries != 1000 || o.cfg.StopAt != 77 {
		t.Errorf("store flags: %+v %v", o, err)
	}
	if _, err := parseFlags([]string{"--space", "sp", "--data-dir", "d", "--log", "a:1", "--checkpoint-interval", "1m"}); err == nil ||
		!strings.Contains(err.Error(), "object store") {
		t.Errorf("checkpoint interval without a store: %v", err)
	}
	_, err = parseFlags([]string{"--space", "xy", "--range-start", "5", "--range-end", "5"})
	for _, want := range []string{"unknown space", "--log is required", "--data-dir is required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad flags: %v, want %q", err, want)
		}
	}
}

// logResume reports where a restarted view resumed. Views commit without
// fsync (viewsvc/apply.go), so a SIGKILL may lose a suffix of batches that
// Pebble had not yet handed to the OS; the view then applies them again from
// the log. Resuming below the last reported index is therefore allowed; what
// must hold is that the state at every index equals the twin's, checked by
// digest below.
func logResume(t *testing.T, resumed, applied uint64) {
	t.Helper()
	if resumed < applied {
		t.Logf("resumed at %d, %d entries below the %d reported before the kill; they are applied again", resumed, applied-resumed, applied)
		return
	}
	t.Logf("resumed at %d (reported %d before the kill)", resumed, applied)
}

// TestCrashResume SIGKILLs the view binary while it applies the log, restarts
// it on the same data dir, and checks that it ends with exactly the state of
// a twin that was never interrupted. The log is a real single-replica log
// service.
func TestCrashResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs binaries")
	}
	bin := filepath.Join(t.TempDir(), "akutan-view")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	t0 := time.Now()
	entries := crashLog(400_000)
	logAddr := startLog(t, entries)
	t.Logf("log ready after %v", time.Since(t0))
	last := uint64(len(entries))

	// The twin applies the same entries in-process, uninterrupted.
	mem := viewsvc.NewMemLog()
	mem.Append(entries...)
	twinCfg := viewsvc.DefaultConfig()
	twinCfg.Space, twinCfg.Range, twinCfg.Dir = viewsvc.SpaceSP, viewsvc.HashRange{Start: 1 << 62}, t.TempDir()
	twinCfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	twin, err := viewsvc.Open(twinCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer twin.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = twin.Run(ctx, mem) }()

	dir := filepath.Join(t.TempDir(), "view")
	args := []string{"--space", "sp", "--range-start", "0x4000000000000000", "--data-dir", dir, "--log", logAddr, "--log-level", "info"}
	var killedAt []uint64
	for kill := 1; kill <= 3; kill++ {
		p := startView(t, bin, args)
		if kill > 1 {
			logResume(t, p.status(t).LastApplied, killedAt[len(killedAt)-1])
		}
		target := last * uint64(kill) / 4
		deadline := time.Now().Add(60 * time.Second)
		for {
			st := p.status(t)
			if st.LastApplied >= target {
				break
			}
			if st.Error != "" || time.Now().After(deadline) {
				t.Fatalf("view stuck at %d: %v", st.LastApplied, st)
			}
			time.Sleep(2 * time.Millisecond)
		}
		applied := p.status(t).LastApplied
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = p.cmd.Wait()
		if applied >= last {
			t.Logf("kill %d came after the view finished; the test proves less", kill)
		}
		killedAt = append(killedAt, applied)
		t.Logf("kill %d: SIGKILL at applied index %d of %d", kill, applied, last)
	}

	p := startView(t, bin, args)
	logResume(t, p.status(t).LastApplied, killedAt[len(killedAt)-1])
	wctx, wcancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer wcancel()
	if err := twin.WaitApplied(wctx, last); err != nil {
		t.Fatal(err)
	}
	for _, index := range append(killedAt, 1, last/3, last) {
		got, err := p.client.Digest(wctx, &viewpb.DigestRequest{Index: index})
		if err != nil {
			t.Fatalf("digest at %d: %v", index, err)
		}
		want, err := twin.Digest(wctx, index)
		if err != nil {
			t.Fatal(err)
		}
		if got.Facts != want.Facts || got.Sum1 != want.Sum1 || got.Sum2 != want.Sum2 {
			t.Errorf("index %d: restarted view %v, twin %v", index, got, want)
		}
	}
	st := p.status(t)
	if st.LastApplied != last || st.Error != "" {
		t.Errorf("final status %v", st)
	}

	// SIGTERM stops it cleanly.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, p.stderr())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
}

// viewProc is a running view binary.
type viewProc struct {
	cmd    *exec.Cmd
	client viewpb.ViewClient
	mu     sync.Mutex
	log    strings.Builder
}

func (p *viewProc) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

func (p *viewProc) status(t *testing.T) *viewpb.StatusResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := p.client.Status(ctx, &viewpb.StatusRequest{})
	if err != nil {
		t.Fatalf("status: %v\n%s", err, p.stderr())
	}
	return st
}

var servingRE = regexp.MustCompile(`msg=serving .*grpc=(\S+)`)

func startView(t *testing.T, bin string, args []string) *viewProc {
	t.Helper()
	p := &viewProc{cmd: exec.Command(bin, args...)}
	errPipe, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line + "\n")
			p.mu.Unlock()
			if m := servingRE.FindStringSubmatch(line); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case a := <-addr:
		conn, err := grpc.NewClient(a, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		p.client = viewpb.NewViewClient(conn)
	case <-time.After(30 * time.Second):
		t.Fatalf("view did not start:\n%s", p.stderr())
	}
	return p
}

// startLog runs a single-replica log service holding entries and returns
// its gRPC address.
func startLog(t *testing.T, entries [][]byte) string {
	t.Helper()
	cfg := logsvc.DefaultConfig()
	cfg.ID, cfg.DataDir, cfg.Bootstrap = "log1", t.TempDir(), true
	cfg.RaftAddr, cfg.GRPCAddr = freeAddr(t), freeAddr(t)
	cfg.LogLevel = "error"
	srv, err := logsvc.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	app := logclient.NewAppender([]string{srv.GRPCAddr()}, logclient.DefaultAppenderConfig())
	defer app.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	for i := 0; i < len(entries); {
		j := min(len(entries), i+16)
		var first uint64
		for {
			first, err = app.AppendBatch(ctx, entries[i:j])
			if err == nil || ctx.Err() != nil {
				break
			}
			time.Sleep(50 * time.Millisecond) // waiting for the leader
		}
		if err != nil {
			t.Fatalf("append: %v", err)
		}
		if first != uint64(i+1) {
			t.Fatalf("appended at %d, want %d", first, i+1)
		}
		i = j
	}
	return srv.GRPCAddr()
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// crashLog is a log of about n facts in transactions of 1000, with deletes
// by id and by triple, re-inserts, and held transactions with decisions.
func crashLog(n int) [][]byte {
	r := rand.New(rand.NewPCG(5, 6))
	ref := func(id uint64) *entrypb.NodeRef { return &entrypb.NodeRef{Ref: &entrypb.NodeRef_Id{Id: id}} }
	var entries [][]byte
	add := func(env *entrypb.Envelope) {
		env.Version = 1
		b, err := proto.Marshal(env)
		if err != nil {
			panic(err)
		}
		entries = append(entries, b)
	}
	var written []*entrypb.Triple
	var ids []uint64
	var held []uint64
	for facts := 0; facts < n; {
		index := uint64(len(entries) + 1)
		before := len(written) // facts of earlier transactions
		if len(held) > 0 && r.IntN(4) == 0 {
			add(&entrypb.Envelope{Command: &entrypb.Envelope_Decision{Decision: &entrypb.Decision{TxIndex: held[0], Commit: r.IntN(3) > 0}}})
			held = held[1:]
			continue
		}
		tx := &entrypb.Transaction{NewNodes: 50}
		for range 20 {
			if before == 0 {
				break
			}
			if r.IntN(2) == 0 {
				tx.Deletes = append(tx.Deletes, &entrypb.Delete{Target: &entrypb.Delete_FactId{FactId: ids[r.IntN(before)]}})
			} else {
				tx.Deletes = append(tx.Deletes, &entrypb.Delete{Target: &entrypb.Delete_Triple{Triple: written[r.IntN(before)]}})
			}
		}
		for i := range 1000 {
			k := uint64(1 + r.IntN(50))
			s, subject := index<<20|k, &entrypb.NodeRef{Ref: &entrypb.NodeRef_NewNode{NewNode: uint32(k)}}
			if r.IntN(2) == 0 && index > 1 {
				// A node of an earlier transaction (which may not exist if
				// that entry was a decision; a fact about it is fine).
				s = uint64(1+r.IntN(int(index-1)))<<20 | k
				subject = ref(s)
			}
			p := uint64(1000 + r.IntN(100))
			o := &entrypb.Object{Value: &entrypb.Object_Int64{Int64: int64(r.IntN(1000))}}
			if r.IntN(3) == 0 {
				o = &entrypb.Object{Value: &entrypb.Object_String_{String_: &entrypb.LangString{Text: "v" + string(rune('a'+r.IntN(26)))}}}
			}
			if before > 0 && r.IntN(50) == 0 {
				tr := written[r.IntN(before)]
				s, p, o = tr.Subject, tr.Predicate, tr.Object
				subject = ref(s)
			}
			tx.Inserts = append(tx.Inserts, &entrypb.Insert{Subject: subject, Predicate: ref(p), Object: o})
			if r.IntN(20) == 0 {
				written = append(written, &entrypb.Triple{Subject: s, Predicate: p, Object: o})
				ids = append(ids, index<<20|uint64(51+i))
			}
		}
		if r.IntN(10) == 0 {
			tx.NeedsDecision = true
			held = append(held, index)
		}
		add(&entrypb.Envelope{Command: &entrypb.Envelope_Transaction{Transaction: tx}})
		facts += 1000
	}
	return entries
}
