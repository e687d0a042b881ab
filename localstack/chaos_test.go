package localstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/akutan/akutan/apisvc/apiclient"
	"github.com/akutan/akutan/internal/chaos"
	"github.com/akutan/akutan/logsvc/logclient"
	"github.com/akutan/akutan/proto/apipb"
	"github.com/akutan/akutan/snapshot"
)

// The linearizability check under faults (issue 12). Concurrent clients
// insert, delete and look up (at the latest index) facts <kN> <v> value
// through the public API of a real three-DC stack, while the test SIGKILLs
// the log leader, cuts a DC off from the other two (whole, or in one
// direction only), pauses a view, and makes the object store answer 500
// and 503 SlowDown. Then it checks that the history is linearizable
// (porcupine, a set of live values per key), that every acknowledged
// insert not later deleted is there at the end, and that the archive holds
// exactly the log.
//
// AKUTAN_CHAOS_DURATION sets how long the faults go on (default 2m; make
// chaos runs 10m). On a failed check the porcupine visualization is
// written to AKUTAN_TEST_ARTIFACTS (or the test's temp dir).
//
// The stack is the layout of lib.sh (same ports from a free base, one
// partition per space), started by the test rather than by up.sh, because
// the cross-DC links must go through proxies the test controls: every Raft
// peer address and every gRPC address one DC's process dials in another DC
// is a chaos.TCPProxy; processes of one DC talk directly. The log replicas
// forward appends to the leader at the gRPC address in the replicated
// member table, which is the real one: a cut DC's log replica can still
// forward to the leader. Raft traffic, views' log reads and the API's
// reads and writes across DCs are cut.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	duration := 2 * time.Minute
	if d := os.Getenv("AKUTAN_CHAOS_DURATION"); d != "" {
		var err error
		if duration, err = time.ParseDuration(d); err != nil {
			t.Fatalf("AKUTAN_CHAOS_DURATION: %v", err)
		}
	}
	began := time.Now()
	cs := newChaosStack(t)
	cs.up()
	t.Logf("chaos: the stack is up after %v", time.Since(began).Round(time.Second))

	const keys, clients = 5, 6
	cs.seed(keys)

	h := chaos.NewHistory()
	ctx, stopClients := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var nextValue atomic.Int64
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs.client(ctx, h, c, keys, &nextValue)
		}()
	}

	faults := map[string]int{}
	var faultsMu sync.Mutex
	count := func(kind string) {
		faultsMu.Lock()
		faults[kind]++
		faultsMu.Unlock()
	}
	end := time.Now().Add(duration)
	s3done := make(chan struct{})
	go func() {
		defer close(s3done)
		cs.s3Faults(end, count)
	}()
	cs.faults(end, count)
	<-s3done
	cs.healAll()
	healed := time.Now()
	// The clients go on through the recovery, so that the stack's return
	// to health is part of the history.
	recovered := cs.waitAvailable(3 * time.Minute)
	if recovered != nil {
		// The history so far is still checked and its figures reported.
		t.Errorf("after the faults: %v", recovered)
	} else {
		t.Logf("chaos: fully available %v after the last fault was healed", time.Since(healed).Round(100*time.Millisecond))
		time.Sleep(3 * time.Second)
	}
	stopClients()
	wg.Wait()
	if recovered == nil {
		cs.finalReads(h, keys, clients)
	}

	ops := h.Ops()
	byKind := map[string]int{}
	for _, op := range ops {
		k := op.Input.Kind.String()
		switch {
		case op.Output.Unknown:
			k += " unknown"
		case op.Input.Kind != chaos.Read:
			k += " ok"
		}
		byKind[k]++
	}
	t.Logf("chaos: %v of faults; %d operations %v; faults injected %v; S3 requests failed: 500 %d, 503 SlowDown %d, 500 after applying %d (of %d forwarded)",
		duration, len(ops), byKind, faults, cs.s3.Failed[chaos.S3InternalError].Load(), cs.s3.Failed[chaos.S3SlowDown].Load(),
		cs.s3.Failed[chaos.S3LostReply].Load(), cs.s3.Forwarded.Load())

	anomalies := 0
	checking := time.Now()
	res, info := porcupine.CheckOperationsVerbose(chaos.Model, chaos.Operations(ops), 5*time.Minute)
	t.Logf("chaos: porcupine: %s in %v", res, time.Since(checking).Round(time.Millisecond))
	switch res {
	case porcupine.Ok:
	case porcupine.Illegal:
		anomalies++
		t.Errorf("the history is not linearizable; visualization: %s", cs.visualize(info))
	default:
		t.Errorf("porcupine could not decide in 5 minutes (%s); visualization: %s", res, cs.visualize(info))
	}
	anomalies += int(cs.crashes.Load())
	if recovered == nil {
		lost := lostWrites(ops, keys, clients)
		anomalies += len(lost)
		for _, l := range lost {
			t.Errorf("lost: %s", l)
		}
		archiving := time.Now()
		err := cs.archiveEqualsLog()
		t.Logf("chaos: archive checked in %v", time.Since(archiving).Round(time.Second))
		if err != nil {
			anomalies++
			t.Errorf("archive against log: %v", err)
		}
	} else {
		anomalies++
		t.Errorf("the stack did not recover: no final reads, acknowledged writes and archive not checked")
	}
	t.Logf("chaos: anomalies %d (linearizability, lost acknowledged writes, archive against log, crashed processes %d)", anomalies, cs.crashes.Load())
}

// lostWrites lists the acknowledged inserts that no delete named and the
// final read (client clients) of their key does not hold.
func lostWrites(ops []chaos.Op, keys, clients int) []string {
	deleted := map[int64]bool{}
	final := map[int][]int64{}
	for _, op := range ops {
		if op.Input.Kind == chaos.Delete {
			deleted[op.Input.Value] = true
		}
		if op.Client == clients && op.Input.Kind == chaos.Read {
			final[op.Input.Key] = op.Output.Values
		}
	}
	var lost []string
	for k := range keys {
		if _, ok := final[k]; !ok {
			lost = append(lost, fmt.Sprintf("no final read of <k%d>", k))
		}
	}
	for _, op := range ops {
		in := op.Input
		if in.Kind != chaos.Insert || op.Output.Unknown || deleted[in.Value] {
			continue
		}
		if vs, ok := final[in.Key]; ok {
			if _, found := slices.BinarySearch(vs, in.Value); !found {
				lost = append(lost, fmt.Sprintf("<k%d> <v> %d acknowledged at %v, not in the final read", in.Key, in.Value, op.Return))
			}
		}
	}
	return lost
}

// chaosStack is lib.sh's stack with proxies on every cross-DC link.
type chaosStack struct {
	*stack
	root     string
	storeURL string // through the S3 proxy
	s3       *chaos.S3Proxy
	links    []link
	procs    map[string]*proc
	views    []string // names of the view processes
	crashes  atomic.Int64

	// raft[a][b], grpc[a][b], api[a][b], view[a][b][n]: the address DC a
	// dials for DC b's process (the real one when a == b).
	raft, grpc, api [4][4]string
	view            [4][4][3]string
}

// link is a proxy carrying DC from's connections to a process of DC to.
type link struct {
	from, to int
	p        *chaos.TCPProxy
}

func newChaosStack(t *testing.T) *chaosStack {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	minio := filepath.Join(root, ".tools", "bin", "minio")
	if _, err := os.Stat(minio); err != nil {
		t.Skip("MinIO is not built: make tools-minio")
	}
	bin := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/akutan/akutan/services/...").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	base := freeBase(t)
	dir := filepath.Join(t.TempDir(), "stack")
	s := &stack{t: t, bin: bin, dir: dir, base: base,
		env: append(os.Environ(), "AKUTAN_BIN="+bin, "AKUTAN_STACK_DIR="+dir, fmt.Sprintf("AKUTAN_BASE_PORT=%d", base))}
	cs := &chaosStack{stack: s, root: root, procs: map[string]*proc{}}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, p := range cs.procs {
			p.stop()
		}
		for _, l := range cs.links {
			l.p.Close()
		}
		if cs.s3 != nil {
			cs.s3.Close()
		}
		if t.Failed() {
			cs.dumpLogs()
			cs.keepLogs()
		}
	})

	minioAddr := fmt.Sprintf("127.0.0.1:%d", base+900)
	cs.add("minio", []string{"MINIO_ROOT_USER=akutan-local", "MINIO_ROOT_PASSWORD=akutan-local-secret", "MINIO_BROWSER=off"},
		minio, "server", filepath.Join(dir, "minio"), "--address", minioAddr,
		"--console-address", fmt.Sprintf("127.0.0.1:%d", base+901), "--quiet")
	if cs.s3, err = chaos.NewS3Proxy("http://" + minioAddr); err != nil {
		t.Fatal(err)
	}
	cs.storeURL = "s3://akutan/stack?endpoint=" + cs.s3.Endpoint() + "&region=us-east-1&path_style=true"

	real := func(off int) string { return fmt.Sprintf("127.0.0.1:%d", base+off) }
	via := func(a, b int, target string) string {
		if a == b {
			return target
		}
		p, err := chaos.NewTCPProxy(target)
		if err != nil {
			t.Fatal(err)
		}
		cs.links = append(cs.links, link{from: a, to: b, p: p})
		return p.Addr()
	}
	for a := 1; a <= 3; a++ {
		for b := 1; b <= 3; b++ {
			cs.raft[a][b] = via(a, b, real(b))
			cs.grpc[a][b] = via(a, b, real(100+b))
			cs.api[a][b] = via(a, b, real(200+b))
			for n := 1; n <= 2; n++ {
				cs.view[a][b][n] = via(a, b, s.view(b, n))
			}
		}
	}
	for dc := 1; dc <= 3; dc++ {
		// Each DC is a cluster: its API server reads its own views, with
		// the other DCs' as the explicit fallback, and its processes tail
		// its own log replica first.
		var peers, logs, views, fallback []string
		logs = append(logs, cs.grpc[dc][dc])
		for b := 1; b <= 3; b++ {
			peers = append(peers, fmt.Sprintf("log-dc%d=%s", b, cs.raft[dc][b]))
			if b == dc {
				views = append(views, cs.view[dc][b][1], cs.view[dc][b][2])
				continue
			}
			logs = append(logs, cs.grpc[dc][b])
			fallback = append(fallback, cs.view[dc][b][1], cs.view[dc][b][2])
		}
		name := fmt.Sprintf("log-dc%d", dc)
		cs.add(name, nil, filepath.Join(bin, "akutan-log"), "--id", name, "--raft-addr", real(dc), "--grpc-addr", real(100+dc),
			"--data-dir", filepath.Join(dir, fmt.Sprintf("dc%d", dc), name), "--bootstrap", "--peers", strings.Join(peers, ","),
			"--archive", cs.storeURL)
		for n, space := range []string{"sp", "po"} {
			name := fmt.Sprintf("view-dc%d-%s-p0-r0", dc, space)
			cs.views = append(cs.views, name)
			cs.add(name, nil, filepath.Join(bin, "akutan-view"), "--space", space, "--range-start", "0x0", "--range-end", "max",
				"--data-dir", filepath.Join(dir, fmt.Sprintf("dc%d", dc), name), "--log", strings.Join(logs, ","),
				"--listen", s.view(dc, n+1), "--cache-bytes", strconv.Itoa(32<<20), "--log-level", "warn",
				"--store", cs.storeURL, "--cluster", fmt.Sprintf("dc%d", dc), "--checkpoint-interval", "10s")
		}
		cs.add(fmt.Sprintf("api-dc%d", dc), nil, filepath.Join(bin, "akutan-api"), "--listen", real(200+dc),
			"--log", strings.Join(logs, ","), "--views", strings.Join(views, ","), "--fallback-views", strings.Join(fallback, ","),
			"--dc", fmt.Sprintf("dc%d", dc), "--hedge-floor", "2ms")
	}
	return cs
}

// up starts MinIO, initialises the bucket, starts every server and waits
// until the stack is fully available.
func (cs *chaosStack) up() {
	t := cs.t
	cs.procs["minio"].start()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, code := cs.cli("", "backup", "init", "--store", cs.stack.storeURL())
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backup init: %s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, p := range cs.procs {
		p.start()
	}
	if err := cs.waitAvailable(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
}

func (cs *chaosStack) waitAvailable(d time.Duration) error {
	deadline := time.Now().Add(d)
	var last string
	for time.Now().Before(deadline) {
		out, code := cs.cli("", "status", "--api", cs.stack.api(1)+","+cs.stack.api(2)+","+cs.stack.api(3))
		if code == 0 {
			return nil
		}
		last = out
		time.Sleep(time.Second)
	}
	return fmt.Errorf("the stack did not become fully available in %v:\n%s", d, last)
}

// seed creates the names <k0>..<kN-1> and <v>, so that every lookup of the
// history resolves them.
func (cs *chaosStack) seed(keys int) {
	var b strings.Builder
	for k := range keys {
		fmt.Fprintf(&b, "<k%d> <seeded> true\n", k)
	}
	b.WriteString("<seeded> <v> 0\n")
	cs.mustCLI(b.String(), "insert", "--api", cs.stack.api(1))
}

func fact(key int, v int64) *apipb.Fact {
	return &apipb.Fact{Subject: name(fmt.Sprintf("k%d", key)), Predicate: name("v"),
		Object: &apipb.Object{Value: &apipb.Object_Int64{Int64: v}}}
}

var latest = &apipb.IndexConstraint{Kind: &apipb.IndexConstraint_Latest{Latest: true}}

// read looks up <kN> <v> at the latest index.
func read(ctx context.Context, c apipb.AkutanClient, key int) ([]int64, error) {
	resp, err := apiclient.LookupSP(ctx, c, &apipb.LookupSPRequest{Index: latest,
		Lookups: []*apipb.SP{{Subject: name(fmt.Sprintf("k%d", key)), Predicate: name("v")}}})
	if err != nil {
		return nil, err
	}
	var vs []int64
	for _, f := range resp.Facts {
		if o, ok := f.Object.GetValue().(*apipb.ResultObject_Int64); ok {
			vs = append(vs, o.Int64)
		}
	}
	slices.Sort(vs)
	return vs, nil
}

// client runs operations against one DC's API server until ctx ends.
// A write that fails is recorded as unknown: it may have been applied. A
// read that fails constrains nothing and is not recorded.
func (cs *chaosStack) client(ctx context.Context, h *chaos.History, id, keys int, next *atomic.Int64) {
	c := apiClient(cs.t, cs.stack.api(1+id%3))
	known := map[int][]int64{} // per key, the values last seen or written
	for ctx.Err() == nil {
		key := rand.N(keys)
		in := chaos.Input{Key: key, Kind: chaos.Read}
		switch r := rand.Float64(); {
		case r < 0.4:
			in.Kind, in.Value = chaos.Insert, next.Add(1)
		case r < 0.65 && len(known[key]) > 0:
			in.Kind, in.Value = chaos.Delete, known[key][rand.N(len(known[key]))]
		}
		opCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		call := h.Now()
		var err error
		var out chaos.Output
		switch in.Kind {
		case chaos.Insert:
			_, err = c.Write(opCtx, &apipb.WriteRequest{Inserts: []*apipb.Fact{fact(key, in.Value)}})
			known[key] = append(known[key], in.Value)
		case chaos.Delete:
			_, err = c.Write(opCtx, &apipb.WriteRequest{Deletes: []*apipb.Fact{fact(key, in.Value)}})
		case chaos.Read:
			out.Values, err = read(opCtx, c, key)
			if err == nil {
				known[key] = out.Values
			}
		}
		ret := h.Now()
		cancel()
		switch {
		case err == nil:
			h.Add(chaos.Op{Client: id, Input: in, Output: out, Call: call, Return: ret})
		case in.Kind != chaos.Read:
			h.Add(chaos.Op{Client: id, Input: in, Output: chaos.Output{Unknown: true}, Call: call, Err: err.Error()})
		}
		if err != nil {
			time.Sleep(200 * time.Millisecond)
		} else {
			time.Sleep(time.Duration(rand.N(20)) * time.Millisecond)
		}
	}
}

// finalReads reads every key once more, as client clients, after the
// stack has recovered.
func (cs *chaosStack) finalReads(h *chaos.History, keys, clients int) {
	c := apiClient(cs.t, cs.stack.api(1))
	for k := range keys {
		deadline := time.Now().Add(60 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			call := h.Now()
			vs, err := read(ctx, c, k)
			ret := h.Now()
			cancel()
			if err == nil {
				h.Add(chaos.Op{Client: clients, Input: chaos.Input{Key: k, Kind: chaos.Read}, Output: chaos.Output{Values: vs}, Call: call, Return: ret})
				break
			}
			if time.Now().After(deadline) {
				cs.t.Errorf("final read of <k%d>: %v", k, err)
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
}

// faults injects one fault at a time until end, each kind in turn, each
// bounded in time and healed before the next.
func (cs *chaosStack) faults(end time.Time, count func(string)) {
	t := cs.t
	kinds := []string{"kill log leader", "partition dc", "partition dc, inbound only", "partition dc, outbound only", "pause view"}
	for i := 0; time.Now().Before(end); i++ {
		cs.restartExited()
		kind := kinds[i%len(kinds)]
		// Half the partitions cut the leader's DC off, the others one of
		// the followers'.
		before := cs.leader()
		dc := 1 + rand.N(3)
		if before != 0 && i/len(kinds)%2 == 0 {
			dc = before
		}
		switch kind {
		case "kill log leader":
			leader := cs.leader()
			if leader == 0 {
				t.Logf("chaos: no log leader to kill")
				time.Sleep(time.Second)
				continue
			}
			name := fmt.Sprintf("log-dc%d", leader)
			t.Logf("chaos: SIGKILL %s, the log leader", name)
			cs.procs[name].signal(syscall.SIGKILL)
			time.Sleep(time.Duration(2000+rand.N(4000)) * time.Millisecond)
			cs.procs[name].start()
		case "partition dc":
			t.Logf("chaos: cut dc%d off from the other two (the log leader is %s)", dc, leaderName(before))
			cs.partition(dc, chaos.Blackhole, chaos.Blackhole)
			time.Sleep(time.Duration(5000+rand.N(5000)) * time.Millisecond)
			cs.partition(dc, chaos.Pass, chaos.Pass)
			t.Logf("chaos: healed; the log leader is %s", cs.leaderName())
		case "partition dc, inbound only":
			// dc receives nothing; what it sends arrives.
			t.Logf("chaos: dc%d hears nothing from the other two; they hear it (the log leader is %s)", dc, leaderName(before))
			cs.partition(dc, chaos.DropDown, chaos.DropUp)
			time.Sleep(time.Duration(5000+rand.N(5000)) * time.Millisecond)
			cs.partition(dc, chaos.Pass, chaos.Pass)
			t.Logf("chaos: healed; the log leader is %s", cs.leaderName())
		case "partition dc, outbound only":
			// dc hears the others; nothing it sends arrives.
			t.Logf("chaos: dc%d hears the other two; they do not hear it (the log leader is %s)", dc, leaderName(before))
			cs.partition(dc, chaos.DropUp, chaos.DropDown)
			time.Sleep(time.Duration(5000+rand.N(5000)) * time.Millisecond)
			cs.partition(dc, chaos.Pass, chaos.Pass)
			t.Logf("chaos: healed; the log leader is %s", cs.leaderName())
		case "pause view":
			name := cs.views[rand.N(len(cs.views))]
			t.Logf("chaos: SIGSTOP %s", name)
			cs.procs[name].signal(syscall.SIGSTOP)
			time.Sleep(time.Duration(3000+rand.N(5000)) * time.Millisecond)
			cs.procs[name].signal(syscall.SIGCONT)
		}
		count(kind)
		time.Sleep(time.Duration(3000+rand.N(3000)) * time.Millisecond)
	}
}

// leader returns the log leader's DC, or 0 when none is known.
func (cs *chaosStack) leader() int {
	// Exit code 3 (a replica unhealthy) still names the leader.
	out, _ := cs.cli("", "log", "info", "--linearizable", "--log", cs.logAddrs())
	if m := leaderRE.FindStringSubmatch(out); m != nil {
		dc, _ := strconv.Atoi(m[1])
		return dc
	}
	return 0
}

func (cs *chaosStack) leaderName() string { return leaderName(cs.leader()) }

func leaderName(dc int) string {
	if dc == 0 {
		return "not known"
	}
	return fmt.Sprintf("log-dc%d", dc)
}

// partition sets the links of DC dc: out on those it dials, in on those
// the others dial into it.
func (cs *chaosStack) partition(dc int, out, in chaos.Mode) {
	for _, l := range cs.links {
		switch {
		case l.from == dc:
			l.p.SetMode(out)
		case l.to == dc:
			l.p.SetMode(in)
		}
	}
}

// s3Faults makes the object store fail half its requests for a while,
// every so often, in each way in turn, until end.
func (cs *chaosStack) s3Faults(end time.Time, count func(string)) {
	modes := []chaos.S3Fault{chaos.S3InternalError, chaos.S3SlowDown, chaos.S3LostReply}
	for i := 0; time.Now().Before(end); i++ {
		time.Sleep(time.Duration(5000+rand.N(5000)) * time.Millisecond)
		f := modes[i%len(modes)]
		cs.t.Logf("chaos: object store answers %s to half the requests", f)
		cs.s3.Set(f, 0.5)
		time.Sleep(time.Duration(5000+rand.N(5000)) * time.Millisecond)
		cs.s3.Set(chaos.S3OK, 0)
		count("object store " + f.String())
	}
}

// healAll passes every link, heals the store, resumes paused views and
// starts whatever is not running.
func (cs *chaosStack) healAll() {
	for _, l := range cs.links {
		l.p.SetMode(chaos.Pass)
	}
	cs.s3.Set(chaos.S3OK, 0)
	for _, p := range cs.procs {
		if p.running() {
			p.signal(syscall.SIGCONT)
		}
	}
	cs.restartExited()
}

// restartExited starts again every process that exited on its own (the
// test restarts what it kills at once), after logging the end of its log:
// each is a crash, an anomaly.
func (cs *chaosStack) restartExited() {
	for _, p := range cs.procs {
		if p.running() {
			continue
		}
		cs.crashes.Add(1)
		if p.crashes++; p.crashes == 1 {
			b, _ := os.ReadFile(p.log)
			if len(b) > 1200 {
				b = b[len(b)-1200:]
			}
			cs.t.Errorf("chaos: %s exited on its own; starting it again. Its log ends:\n%s", p.name, b)
		} else {
			cs.t.Errorf("chaos: %s exited on its own again (%d times); starting it again", p.name, p.crashes)
		}
		p.start()
	}
}

// archiveEqualsLog waits until the archive covers the log's last index,
// then checks that it holds every index once with the log's bytes.
func (cs *chaosStack) archiveEqualsLog() error {
	t := cs.t
	var last uint64
	deadline := time.Now().Add(2 * time.Minute)
	for {
		info, _ := cs.cli("", "log", "info", "--linearizable", "--log", cs.logAddrs())
		if i := strings.Index(info, "last index"); i >= 0 {
			fmt.Sscanf(info[i:], "last index %d", &last)
		}
		out, code := cs.cli("", "backup", "now", "--api", cs.stack.apiAddrs(), "--log", cs.logAddrs(), "--timeout", "30s")
		if code == 0 && last > 0 && indexOf(t, out) >= last {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the archive did not reach the log's last index %d:\n%s\n%s", last, out, info)
		}
		time.Sleep(time.Second)
	}
	ctx := t.Context()
	store, lc := cs.logCatalog()
	archived := map[uint64][]byte{}
	for _, ref := range lc.Segments {
		entries, err := snapshot.ReadSegment(ctx, store, ref)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if _, dup := archived[e.Index]; dup {
				return fmt.Errorf("index %d archived twice", e.Index)
			}
			archived[e.Index] = e.Data
		}
	}
	r := logclient.NewReader(strings.Split(cs.logAddrs(), ","))
	defer r.Close()
	stop := errors.New("stop")
	n := 0
	err := r.Stream(ctx, 1, func(es []logclient.Entry) error {
		for _, e := range es {
			if got, ok := archived[e.Index]; !ok || !bytes.Equal(got, e.Data) {
				return fmt.Errorf("index %d: archived %v, log and archive differ", e.Index, ok)
			}
			n++
			if e.Index == last {
				return stop
			}
		}
		return nil
	})
	if !errors.Is(err, stop) {
		return err
	}
	t.Logf("chaos: the archive holds the log's %d entries, indexes 1..%d, in %d segments", n, last, len(lc.Segments))
	return nil
}

// artifacts is the directory a failed run leaves its evidence in.
func (cs *chaosStack) artifacts() string {
	if dir := os.Getenv("AKUTAN_TEST_ARTIFACTS"); dir != "" {
		return dir
	}
	return cs.t.TempDir()
}

// keepLogs copies every process's log to the artifact dir.
func (cs *chaosStack) keepLogs() {
	dir := filepath.Join(cs.artifacts(), "chaos-logs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		cs.t.Log(err)
		return
	}
	files, _ := filepath.Glob(filepath.Join(cs.dir, "logs", "*.log"))
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644)
		}
	}
	cs.t.Logf("chaos: the processes' logs are in %s", dir)
}

// visualize writes porcupine's visualization and the history to the
// artifact dir and returns the HTML file's path.
func (cs *chaosStack) visualize(info porcupine.LinearizationInfo) string {
	dir := cs.artifacts()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err.Error()
	}
	path := filepath.Join(dir, "chaos-linearizability.html")
	if err := porcupine.VisualizePath(chaos.Model, info, path); err != nil {
		return err.Error()
	}
	return path
}

// proc is one server process of the chaos stack, restartable with the
// same command line.
type proc struct {
	t    testing.TB
	name string
	args []string
	env  []string
	log  string
	// crashes counts the times it exited on its own.
	crashes int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func (cs *chaosStack) add(name string, env []string, args ...string) {
	cs.procs[name] = &proc{t: cs.t, name: name, args: args,
		env: append(append(slices.Clone(cs.env), "AWS_ACCESS_KEY_ID=akutan-local", "AWS_SECRET_ACCESS_KEY=akutan-local-secret", "AWS_REGION=us-east-1"), env...),
		log: filepath.Join(cs.dir, "logs", name+".log")}
}

// start starts the process unless it runs.
func (p *proc) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done != nil {
		select {
		case <-p.done:
		default:
			return
		}
	}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Env, cmd.Stdout, cmd.Stderr = p.env, f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		p.t.Errorf("start %s: %v", p.name, err)
		return
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		f.Close()
		close(done)
	}()
	p.cmd, p.done = cmd, done
}

func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// signal sends sig and, for SIGKILL, waits until the process is gone.
func (p *proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	if sig == syscall.SIGKILL {
		<-done
	}
}

// stop resumes and terminates the process, and kills it after 10 s.
func (p *proc) stop() {
	if !p.running() {
		return
	}
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	p.signal(syscall.SIGCONT)
	p.signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.signal(syscall.SIGKILL)
	}
}
