package viewsvc

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/akutan/akutan/internal/fulldisk"
	"github.com/akutan/akutan/logsvc"
	"github.com/akutan/akutan/logsvc/logclient"
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

// The same on a real full disk: an akutan-view process whose data dir is a
// small tmpfs, filled up while it applies, SIGKILLed and restarted while
// full, then given its space back.

var (
	viewBinOnce sync.Once
	viewBin     string
	viewBinErr  error
)

func viewBinary(t *testing.T) string {
	t.Helper()
	viewBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "akutan-view-bin")
		if err != nil {
			viewBinErr = err
			return
		}
		viewBin = filepath.Join(dir, "akutan-view")
		if out, err := exec.Command("go", "build", "-o", viewBin, "github.com/akutan/akutan/services/akutan-view").CombinedOutput(); err != nil {
			viewBinErr = fmt.Errorf("build akutan-view: %v\n%s", err, out)
		}
	})
	if viewBinErr != nil {
		t.Fatal(viewBinErr)
	}
	return viewBin
}

func freeTCPAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// viewProc is an akutan-view process.
type viewProc struct {
	t       *testing.T
	args    []string
	logPath string
	cmd     *exec.Cmd
	exited  chan error
}

func (p *viewProc) start() {
	p.t.Helper()
	out, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	p.cmd = exec.Command(viewBinary(p.t), p.args...)
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.exited = make(chan error, 1)
	go func(cmd *exec.Cmd) { err := cmd.Wait(); out.Close(); p.exited <- err }(p.cmd)
}

func (p *viewProc) kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.cmd = nil
}

// logLines returns the lines of the process's log that contain s.
func (p *viewProc) logLines(s string) string {
	b, _ := os.ReadFile(p.logPath)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func (p *viewProc) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// TestViewProcessFullDisk: an akutan-view whose data dir fills up reports
// the full disk in Status and applies nothing more, keeps doing so across a
// SIGKILL and restart (or exits with a clear error, for the supervisor to
// restart), and once space returns applies to the end of the log with the
// digest of a view that never failed.
func TestViewProcessFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	mnt := fulldisk.Mount(t, "32m")
	ds := makeDataset(5, 20_000, 40, true, 0)
	half := len(ds.entries) / 2
	last := uint64(len(ds.entries))

	ref := openView(t, testConfig(t, SpaceSP, FullRange))
	refLog := NewMemLog()
	refLog.Append(ds.entries...)
	start(t, ref, refLog)
	waitApplied(t, ref, last)
	want, err := ref.Digest(t.Context(), last)
	if err != nil {
		t.Fatal(err)
	}

	lcfg := logsvc.DefaultConfig()
	lcfg.ID, lcfg.DataDir, lcfg.Bootstrap = "log1", t.TempDir(), true
	lcfg.RaftAddr, lcfg.GRPCAddr = freeTCPAddr(t), freeTCPAddr(t)
	lcfg.LogLevel = "error"
	lsrv, err := logsvc.Start(lcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lsrv.Close() })
	app := logclient.NewAppender([]string{lsrv.GRPCAddr()}, logclient.DefaultAppenderConfig())
	defer app.Close()
	appendAll := func(entries [][]byte) {
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		for i := 0; i < len(entries); {
			j := min(len(entries), i+16)
			if _, err := app.AppendBatch(ctx, entries[i:j]); err != nil {
				if ctx.Err() != nil {
					t.Fatalf("append: %v", err)
				}
				time.Sleep(50 * time.Millisecond) // waiting for the leader
				continue
			}
			i = j
		}
	}
	appendAll(ds.entries[:half])

	listen := freeTCPAddr(t)
	p := &viewProc{t: t, logPath: filepath.Join(t.TempDir(), "view.log"),
		args: []string{"--space", "sp", "--data-dir", filepath.Join(mnt, "view"), "--log", lsrv.GRPCAddr(), "--listen", listen, "--cache-bytes", "8388608"}}
	t.Cleanup(p.kill) // before the unmount
	p.start()
	cc, err := grpc.NewClient(listen, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	cl := viewpb.NewViewClient(cc)
	status := func() (*viewpb.StatusResponse, error) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		return cl.Status(ctx, &viewpb.StatusRequest{})
	}
	waitFor := func(what string, ok func(*viewpb.StatusResponse) bool) *viewpb.StatusResponse {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			st, err := status()
			if err == nil && ok(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("view never %s: %v %v\n%s", what, st, err, p.logTail())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("applied the first half", func(st *viewpb.StatusResponse) bool { return st.LastApplied >= uint64(half) })

	// Leave 4 MiB: below the view's 16 MiB reserve, so it stops applying,
	// and room for what Pebble writes in the background (a flush already
	// under way, its MANIFEST), which it treats as fatal when that fails.
	filler := fulldisk.Fill(t, mnt, 4<<20)
	// The view reads free space at most every 100 ms (pebblelog.Health);
	// without this pause it could apply the whole second half on the
	// reading taken before the fill, as it did once on a loaded machine.
	time.Sleep(300 * time.Millisecond)
	appendAll(ds.entries[half:])
	full := func(st *viewpb.StatusResponse) bool { return strings.Contains(st.Error, "no space left on device") }
	st := waitFor("reported the full disk", full)
	t.Logf("stalled at %d of %d: %s", st.LastApplied, last, st.Error)
	if st.LastApplied >= last || st.State == viewpb.State_STOPPED {
		t.Fatalf("on a full disk: applied %d of %d, state %v", st.LastApplied, last, st.State)
	}

	// SIGKILL and restart while the disk is still full.
	p.kill()
	p.start()
	select {
	case err := <-p.exited:
		p.cmd = nil
		t.Logf("restarted on a full disk, it exited: %v\n%s", err, p.logLines("level="))
	case <-time.After(3 * time.Second):
		st := waitFor("reported the full disk after a restart", full)
		t.Logf("restarted on a full disk at %d: %s", st.LastApplied, st.Error)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if p.cmd == nil {
		p.start() // the supervisor's restart
	}
	waitFor("applied the whole log", func(st *viewpb.StatusResponse) bool { return st.LastApplied >= last && st.Error == "" })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	d, err := cl.Digest(ctx, &viewpb.DigestRequest{Index: last})
	if err != nil {
		t.Fatal(err)
	}
	if d.Facts != want.Facts || d.Sum1 != want.Sum1 || d.Sum2 != want.Sum2 {
		t.Fatalf("digest at %d after the disk recovered %v, want %v", last, d, want)
	}
}
