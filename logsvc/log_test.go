package logsvc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/akutan/akutan/internal/buildinfo"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/akutan/akutan/logsvc/logclient"
	"github.com/akutan/akutan/logsvc/logerr"
	"github.com/akutan/akutan/proto/logpb"
)

func TestAppendReadAndForwarding(t *testing.T) {
	c := newCluster(t, 3, nil)
	leader := c.waitLeader()
	var follower *Server
	for _, s := range c.servers {
		if s != leader {
			follower = s
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// A follower forwards appends to the leader.
	cl, closeCl := client(t, follower.GRPCAddr())
	defer closeCl()
	resp, err := cl.Append(ctx, &logpb.AppendRequest{Entries: [][]byte{pingEntry("a"), pingEntry("b"), pingEntry("c")}})
	if err != nil {
		t.Fatalf("append through follower: %v", err)
	}
	if resp.FirstIndex != 1 || resp.LeaderAddress != leader.GRPCAddr() {
		t.Fatalf("first index %d, leader %q; want 1, %q", resp.FirstIndex, resp.LeaderAddress, leader.GRPCAddr())
	}

	// The coalescing appender gives dense indexes to concurrent callers.
	app := logclient.NewAppender(c.addrs(), logclient.DefaultAppenderConfig())
	defer app.Close()
	var wg sync.WaitGroup
	indexes := make([]uint64, 200)
	for i := range indexes {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			idx, err := app.Append(ctx, pingEntry(fmt.Sprintf("p%d", i)))
			if err != nil {
				t.Errorf("append %d: %v", i, err)
			}
			indexes[i] = idx
		}(i)
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for _, idx := range indexes {
		if idx < 4 || idx > 203 || seen[idx] {
			t.Fatalf("index %d out of range or repeated", idx)
		}
		seen[idx] = true
	}

	// Linearizable Info through a follower reflects every acknowledged
	// append.
	in := info(t, follower.GRPCAddr(), true)
	if in.LastIndex != 203 || in.LeaderId != leader.ID() || len(in.Members) != 3 {
		t.Fatalf("linearizable info: last %d leader %q members %d; want 203, %q, 3", in.LastIndex, in.LeaderId, len(in.Members), leader.ID())
	}
	c.waitApplied(203)
	in = info(t, leader.GRPCAddr(), false)
	for _, m := range in.Members {
		if m.AppliedIndex != 203 || m.GrpcAddress == "" || !m.Voter || m.Build != buildinfo.Get().String() {
			t.Fatalf("member %+v: want applied 203, an address, voter, this build", m)
		}
	}

	// Every replica serves the same entries.
	want := readAll(t, leader.GRPCAddr(), 1, 203)
	for _, s := range c.servers {
		got := readAll(t, s.GRPCAddr(), 1, 203)
		for i := range want {
			if got[i].Index != want[i].Index || !bytes.Equal(got[i].Data, want[i].Data) {
				t.Fatalf("%s entry %d differs from the leader's", s.ID(), want[i].Index)
			}
		}
	}
	if n := nonceOf(t, want[1].Data); n != "b" {
		t.Fatalf("entry 2 is %q, want b", n)
	}

	// Read follows new entries as they commit.
	r := logclient.NewReader([]string{follower.GRPCAddr()})
	defer r.Close()
	got := make(chan logclient.Entry, 1)
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	go r.Stream(rctx, 204, func(es []logclient.Entry) error {
		got <- es[0]
		return errors.New("stop")
	})
	time.Sleep(100 * time.Millisecond)
	if _, err := app.Append(ctx, pingEntry("late")); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		if e.Index != 204 || nonceOf(t, e.Data) != "late" {
			t.Fatalf("followed entry %d %q", e.Index, nonceOf(t, e.Data))
		}
	case <-ctx.Done():
		t.Fatal("tailing read saw nothing")
	}
}

// Test 2: a replica that was down while the log moved on and snapshots
// compacted Raft's log catches up by snapshot install and then serves every
// retained index.
func TestSnapshotInstallCatchUp(t *testing.T) {
	c := newCluster(t, 3, func(i int, cfg *Config) {
		cfg.SnapshotThreshold = 20
		cfg.TrailingLogs = 5
		cfg.SnapshotInterval = 50 * time.Millisecond
		// On raft-wal the leader was seen still sending this follower the
		// entries it missed after compacting; the Pebble store drops them
		// at once, which forces the snapshot install under test.
		cfg.RaftStore = StorePebble
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	app := logclient.NewAppender(c.addrs(), logclient.DefaultAppenderConfig())
	defer app.Close()
	for i := 0; i < 10; i++ {
		if _, err := app.Append(ctx, pingEntry(fmt.Sprintf("before-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	leader := c.waitLeader()
	down := 0
	for i, s := range c.servers {
		if s != leader {
			down = i
		}
	}
	c.stop(down)
	var last uint64
	for i := 0; i < 300; i++ {
		batch := make([][]byte, 5)
		for j := range batch {
			batch[j] = pingEntry(fmt.Sprintf("while-down-%d-%d", i, j))
		}
		first, err := app.AppendBatch(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		last = first + 4
	}
	leader = c.waitLeader()
	// Snapshot (and so compact) on every running replica, not only the
	// current leader: whichever leads when the replica comes back must no
	// longer hold the entries it missed.
	for i, srv := range c.servers {
		if i == down {
			continue
		}
		if err := srv.Raft().Snapshot().Error(); err != nil && !strings.Contains(err.Error(), "nothing new") {
			t.Fatalf("snapshot: %v", err)
		}
	}
	if first, _ := leader.Raft().Stats()["first_index"]; first == "0" {
		t.Logf("leader raft stats: %v", leader.Raft().Stats())
	}

	s := c.start(down)
	c.waitApplied(last)
	if snap := s.Raft().Stats()["last_snapshot_index"]; snap == "0" {
		t.Fatalf("restarted replica caught up without installing a snapshot")
	}
	want := readAll(t, leader.GRPCAddr(), 1, last)
	got := readAll(t, s.GRPCAddr(), 1, last)
	if len(got) != len(want) {
		t.Fatalf("restarted replica served %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Index != want[i].Index || !bytes.Equal(got[i].Data, want[i].Data) {
			t.Fatalf("entry %d differs after snapshot install", want[i].Index)
		}
	}
}

// Test 3: add a fourth voter and remove an old one while appends go on.
func TestMembershipChangeUnderLoad(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	cfg4 := testConfig(t, "n4")
	s4, err := Start(cfg4)
	if err != nil {
		t.Fatal(err)
	}
	defer s4.Close()

	var stop atomic.Bool
	var mu sync.Mutex
	acked := map[string]uint64{}
	var wg sync.WaitGroup
	addrs := append(c.addrs(), cfg4.GRPCAddr)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			app := logclient.NewAppender(addrs, logclient.DefaultAppenderConfig())
			defer app.Close()
			for i := 0; !stop.Load(); i++ {
				nonce := fmt.Sprintf("w%d-%d", w, i)
				actx, acancel := context.WithTimeout(ctx, 10*time.Second)
				idx, err := app.Append(actx, pingEntry(nonce))
				acancel()
				if err == nil {
					mu.Lock()
					acked[nonce] = idx
					mu.Unlock()
				} else if !errors.Is(err, logerr.ErrUnknownOutcome) {
					t.Logf("append %s: %v", nonce, err)
				}
			}
		}(w)
	}
	time.Sleep(300 * time.Millisecond)

	cl, closeCl := client(t, c.servers[0].GRPCAddr())
	defer closeCl()
	if _, err := cl.AddVoter(ctx, &logpb.AddVoterRequest{Id: "n4", RaftAddress: cfg4.RaftAddr, GrpcAddress: cfg4.GRPCAddr}); err != nil {
		t.Fatalf("add voter: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	// Remove the current leader, the hardest member to lose.
	old := c.waitLeader()
	if _, err := cl.RemoveServer(ctx, &logpb.RemoveServerRequest{Id: old.ID()}); err != nil && !strings.Contains(err.Error(), "leadership lost") {
		t.Fatalf("remove server: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	for i, s := range c.servers {
		if s == old {
			c.stop(i)
		}
	}

	var rest []*Server
	for _, s := range c.servers {
		if s != nil {
			rest = append(rest, s)
		}
	}
	rest = append(rest, s4)
	in := info(t, s4.GRPCAddr(), true)
	if len(in.Members) != 3 {
		t.Fatalf("members after change: %d, want 3: %v", len(in.Members), in.Members)
	}
	for _, m := range in.Members {
		if m.Id == old.ID() {
			t.Fatalf("removed member %s still listed", m.Id)
		}
	}
	if len(acked) < 20 {
		t.Fatalf("only %d appends acknowledged during the change", len(acked))
	}
	for _, s := range rest {
		for time.Now().Before(time.Now().Add(10 * time.Second)) {
			if _, last := s.store.Bounds(); last >= in.LastIndex {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		entries := readAll(t, s.GRPCAddr(), 1, in.LastIndex)
		at := map[string]uint64{}
		for _, e := range entries {
			at[nonceOf(t, e.Data)] = e.Index
		}
		for nonce, idx := range acked {
			if at[nonce] != idx {
				t.Fatalf("%s: acknowledged %s at %d, found at %d", s.ID(), nonce, idx, at[nonce])
			}
		}
	}
}

// Test 4: the leader refuses a version change until every replica supports
// the new version, naming those that do not or could not be asked, and
// appends nothing. Once they all do, the change is accepted. A replica that
// still meets an entry it cannot read (here one rolled back to version 1
// after the change) stops at that entry, and the others go on; upgraded
// again it resumes exactly where it stopped.
func TestVersionGate(t *testing.T) {
	c := newCluster(t, 3, func(i int, cfg *Config) {
		cfg.MaxSupportedVersion = 2
		if i == 2 {
			cfg.MaxSupportedVersion = 1
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// The old replica must not lead: it would refuse version 2 itself.
	notLeading := func(i int) {
		t.Helper()
		if s := c.servers[i]; s.IsLeader() {
			if err := s.Raft().LeadershipTransfer().Error(); err != nil {
				t.Fatal(err)
			}
		}
		c.waitLeader()
	}
	notLeading(2)
	app := logclient.NewAppender(c.addrs()[:2], logclient.DefaultAppenderConfig())
	defer app.Close()
	for i := 0; i < 5; i++ {
		if _, err := app.Append(ctx, pingEntry(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	// An entry of version 2 before the change is refused, saying the log's
	// version.
	var le *logerr.Error
	if _, err := app.AppendBatch(ctx, [][]byte{versionChangeEntry(2, 3)}); !errors.As(err, &le) || !errors.Is(err, logerr.ErrInvalidEntry) || le.Meta["log_version"] != "1" {
		t.Fatalf("version 2 entry before the change: %v, want invalid entry with log_version 1", err)
	}
	// A change batched with other entries is refused.
	if _, err := app.AppendBatch(ctx, [][]byte{pingEntry("x"), versionChangeEntry(1, 2)}); !errors.Is(err, logerr.ErrInvalidEntry) {
		t.Fatalf("batched version change: %v, want invalid entry", err)
	}

	// n3 supports only version 1: the change is refused, naming it alone,
	// whether sent to the leader or through a follower.
	refused := func(err error, why string) {
		t.Helper()
		var le *logerr.Error
		if !errors.As(err, &le) || !errors.Is(err, logerr.ErrVersionRefused) || le.Meta["replicas"] != "n3" || le.Meta["version"] != "2" ||
			!strings.Contains(err.Error(), why) || strings.Contains(err.Error(), "n1") || strings.Contains(err.Error(), "n2") {
			t.Fatalf("version change: %v; want it refused naming only n3: %q", err, why)
		}
	}
	_, err := app.AppendBatch(ctx, [][]byte{versionChangeEntry(1, 2)})
	refused(err, "version change to 2 refused: every log replica must support it first; n3 supports up to version 1")
	leader := c.waitLeader()
	for _, s := range c.servers {
		if s == leader {
			continue
		}
		_, err := mustClient(t, s.GRPCAddr()).Append(ctx, &logpb.AppendRequest{Entries: [][]byte{versionChangeEntry(1, 2)}})
		if status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("through follower %s: %v, want FailedPrecondition", s.ID(), err)
		}
		refused(logerr.FromStatus(err), "n3 supports up to version 1")
	}
	// A replica that cannot be asked does not count as supporting it.
	c.stop(2)
	_, err = app.AppendBatch(ctx, [][]byte{versionChangeEntry(1, 2)})
	refused(err, "n3 could not be asked (unreachable")
	if in := info(t, c.addrs()[0], true); in.LastIndex != 5 || in.LogVersion != 1 {
		t.Fatalf("refused changes moved the log: last %d version %d, want 5 and 1", in.LastIndex, in.LogVersion)
	}

	// Upgraded, n3 supports version 2 and the change is accepted (once the
	// leader reaches n3 again).
	c.cfgs[2].MaxSupportedVersion = 2
	c.start(2)
	var vc uint64
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		vc, err = app.AppendBatch(ctx, [][]byte{versionChangeEntry(1, 2)})
		if err == nil {
			break
		}
		if !errors.Is(err, logerr.ErrVersionRefused) || time.Now().After(deadline) {
			t.Fatalf("version change with every replica upgraded: %v", err)
		}
	}
	if vc != 6 {
		t.Fatalf("version change at %d, want 6", vc)
	}
	// Versions only go up.
	if _, err := app.AppendBatch(ctx, [][]byte{versionChangeEntry(2, 2)}); !errors.Is(err, logerr.ErrInvalidEntry) || !strings.Contains(err.Error(), "does not raise the log version 2") {
		t.Fatalf("change to the current version: %v", err)
	}
	c.waitApplied(vc)

	// Roll n3 back to version 1: it stops at the first entry of version 2.
	c.stop(2)
	c.cfgs[2].MaxSupportedVersion = 1
	c.start(2)
	notLeading(2)
	v2, _ := protoPing(2, "after")
	after, err := app.AppendBatch(ctx, [][]byte{v2})
	if err != nil {
		t.Fatalf("append version 2 entry: %v", err)
	}

	old := c.servers[2]
	wantErr := "unsupported log version 2 (supports up to 1)"
	deadline := time.Now().Add(10 * time.Second)
	for {
		in := info(t, old.GRPCAddr(), false)
		if in.Error == wantErr && in.LastIndex == after-1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("old replica info: error %q last %d; want %q at %d", in.Error, in.LastIndex, wantErr, after-1)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Its RPCs say why; a read gets every entry before the one it cannot
	// read first.
	cl, closeCl := client(t, old.GRPCAddr())
	defer closeCl()
	if _, err := cl.Append(ctx, &logpb.AppendRequest{Entries: [][]byte{pingEntry("z")}}); err == nil || !strings.Contains(err.Error(), wantErr) {
		t.Fatalf("append to stopped replica: %v", err)
	}
	stream, err := cl.Read(ctx, &logpb.ReadRequest{From: 1})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for {
		resp, err := stream.Recv()
		if err != nil {
			if !errors.Is(logerr.FromStatus(err), logerr.ErrUnsupportedVersion) || !strings.Contains(err.Error(), wantErr) {
				t.Fatalf("read from stopped replica ended with %v", err)
			}
			break
		}
		n += len(resp.Entries)
	}
	if n != int(after-1) {
		t.Fatalf("stopped replica served %d entries, want %d", n, after-1)
	}
	// The others go on.
	for _, s := range c.servers[:2] {
		deadline := time.Now().Add(10 * time.Second)
		for {
			in := info(t, s.GRPCAddr(), false)
			if in.Error == "" && in.LastIndex == after && in.LogVersion == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: error %q last %d version %d", s.ID(), in.Error, in.LastIndex, in.LogVersion)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// Upgrade: the same data dir with support for version 2 resumes at the
	// entry it stopped at and skips nothing.
	c.stop(2)
	c.cfgs[2].MaxSupportedVersion = 2
	s := c.start(2)
	c.waitApplied(after)
	want := readAll(t, c.servers[0].GRPCAddr(), 1, after)
	got := readAll(t, s.GRPCAddr(), 1, after)
	for i := range want {
		if !bytes.Equal(got[i].Data, want[i].Data) {
			t.Fatalf("upgraded replica differs at %d", want[i].Index)
		}
	}
}

func protoPing(version uint32, nonce string) ([]byte, error) {
	b := pingEntry(nonce)
	// Field 1 (version) is the first byte pair of a marshalled envelope.
	if b[0] != 0x08 {
		return nil, fmt.Errorf("unexpected encoding")
	}
	b[1] = byte(version)
	return b, nil
}

// Test 5 (in-process part): bad requests get clear errors and change nothing.
func TestBadInput(t *testing.T) {
	c := newCluster(t, 3, nil)
	leader := c.waitLeader()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, closeCl := client(t, leader.GRPCAddr())
	defer closeCl()
	if _, err := cl.Append(ctx, &logpb.AppendRequest{Entries: [][]byte{pingEntry("ok")}}); err != nil {
		t.Fatal(err)
	}
	huge := make([]byte, 8<<20+1)
	cases := []struct {
		name    string
		entries [][]byte
		want    error
		msg     string
	}{
		{"empty batch", nil, logerr.ErrEmptyBatch, "empty batch"},
		{"oversize entry", [][]byte{huge}, logerr.ErrEntryTooLarge, "entry 0 is 8388609 bytes; the limit is 8388608"},
		{"garbage", [][]byte{{0xff, 0xff, 0xff}}, logerr.ErrInvalidEntry, "not an envelope"},
		{"no command", [][]byte{{0x08, 0x01}}, logerr.ErrInvalidEntry, "no command"},
		{"version 0", [][]byte{pingEntry("v0")[2:]}, logerr.ErrInvalidEntry, "version is 0"},
		{"good then bad", [][]byte{pingEntry("fine"), {0xff}}, logerr.ErrInvalidEntry, "entry 1"},
	}
	for _, tc := range cases {
		_, err := cl.Append(ctx, &logpb.AppendRequest{Entries: tc.entries})
		if !errors.Is(logerr.FromStatus(err), tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: got %v, want %v containing %q", tc.name, err, tc.want, tc.msg)
		}
	}
	// Ask whichever replica leads by now: on a loaded machine leadership
	// may move during the test, which is no failure of bad-input handling.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		lcl, closeL := client(t, c.waitLeader().GRPCAddr())
		in, err := lcl.Info(ctx, &logpb.InfoRequest{Linearizable: true})
		closeL()
		if err == nil {
			if in.LastIndex != 1 {
				t.Fatalf("bad appends changed the log: last index %d", in.LastIndex)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("linearizable info: %v", err)
		}
	}

	readErr := func(from uint64) error {
		stream, err := cl.Read(ctx, &logpb.ReadRequest{From: from})
		if err != nil {
			return err
		}
		_, err = stream.Recv()
		return logerr.FromStatus(err)
	}
	if err := readErr(0); !errors.Is(err, logerr.ErrInvalidArgument) {
		t.Errorf("read from 0: %v", err)
	}
	if err := readErr(7); !errors.Is(err, logerr.ErrPastEnd) || !strings.Contains(err.Error(), "past the end of the log (last index 1)") {
		t.Errorf("read past the end: %v", err)
	}
	// Discard is refused while nothing is archived.
	_, err := cl.DiscardPrefix(ctx, &logpb.DiscardPrefixRequest{Before: 2})
	if !errors.Is(logerr.FromStatus(err), logerr.ErrNotArchived) || !strings.Contains(err.Error(), "only entries through 0 are archived") {
		t.Errorf("discard unarchived: %v", err)
	}
	for _, s := range c.servers {
		if first, _ := s.store.Bounds(); first != 1 {
			t.Fatalf("%s discarded to %d", s.ID(), first)
		}
	}
}

// memArchiver is a fake archive behind the real Archiver interface.
type memArchiver struct {
	mu      sync.Mutex
	entries map[uint64][]byte
	fail    atomic.Bool
}

func (a *memArchiver) Archive(ctx context.Context, entries []Entry) (uint64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail.Load() {
		return 0, errors.New("archive offline")
	}
	for _, e := range entries {
		a.entries[e.Index] = e.Data
	}
	var through uint64
	for a.entries[through+1] != nil {
		through++
	}
	return through, nil
}

func TestDiscardPrefixAfterArchive(t *testing.T) {
	arch := &memArchiver{entries: map[uint64][]byte{}}
	arch.fail.Store(true)
	c := newCluster(t, 3, func(i int, cfg *Config) {
		cfg.Archiver = arch
		cfg.ArchiveInterval = 20 * time.Millisecond
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	app := logclient.NewAppender(c.addrs(), logclient.DefaultAppenderConfig())
	defer app.Close()
	batch := make([][]byte, 100)
	for i := range batch {
		batch[i] = pingEntry(strconv.Itoa(i))
	}
	if _, err := app.AppendBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	cl, closeCl := client(t, c.addrs()[0])
	defer closeCl()
	// The archive is down: nothing may be discarded.
	time.Sleep(100 * time.Millisecond)
	if _, err := cl.DiscardPrefix(ctx, &logpb.DiscardPrefixRequest{Before: 50}); !errors.Is(logerr.FromStatus(err), logerr.ErrNotArchived) {
		t.Fatalf("discard while archive down: %v", err)
	}
	arch.fail.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for info(t, c.addrs()[0], true).ArchivedThrough < 100 {
		if time.Now().After(deadline) {
			t.Fatal("archive watermark did not reach 100")
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := cl.DiscardPrefix(ctx, &logpb.DiscardPrefixRequest{Before: 61})
	if err != nil || resp.FirstIndex != 61 {
		t.Fatalf("discard before 61: %v %v", resp, err)
	}
	// Beyond the end is refused.
	if _, err := cl.DiscardPrefix(ctx, &logpb.DiscardPrefixRequest{Before: 500}); !errors.Is(logerr.FromStatus(err), logerr.ErrNotArchived) {
		t.Fatalf("discard past archive: %v", err)
	}
	c.waitApplied(100)
	for _, s := range c.servers {
		deadline := time.Now().Add(5 * time.Second)
		for {
			if first, _ := s.store.Bounds(); first == 61 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not discard", s.ID())
			}
			time.Sleep(10 * time.Millisecond)
		}
		stream, err := mustClient(t, s.GRPCAddr()).Read(ctx, &logpb.ReadRequest{From: 60})
		if err == nil {
			_, err = stream.Recv()
		}
		if err := logerr.FromStatus(err); !errors.Is(err, logerr.ErrTruncated) || !strings.Contains(err.Error(), "below the first retained index 61") {
			t.Fatalf("%s read below first: %v", s.ID(), err)
		}
		got := readAll(t, s.GRPCAddr(), 61, 100)
		if len(got) != 40 || nonceOf(t, got[0].Data) != "60" {
			t.Fatalf("%s retained entries wrong", s.ID())
		}
	}
	// The archive holds what was discarded.
	for i := uint64(1); i <= 60; i++ {
		if nonceOf(t, arch.entries[i]) != strconv.Itoa(int(i-1)) {
			t.Fatalf("archive entry %d wrong", i)
		}
	}
}

func mustClient(t testing.TB, addr string) logpb.LogClient {
	cl, closeCl := client(t, addr)
	t.Cleanup(closeCl)
	return cl
}

// Compare-and-append: of many writers claiming one key since the same
// index, exactly one wins; claims survive snapshots and are pruned with the
// prefix they belong to.
func TestGuardedAppend(t *testing.T) {
	arch := &memArchiver{entries: map[uint64][]byte{}}
	c := newCluster(t, 3, func(i int, cfg *Config) {
		cfg.Archiver = arch
		cfg.ArchiveInterval = 20 * time.Millisecond
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	app := logclient.NewAppender(c.addrs(), logclient.DefaultAppenderConfig())
	defer app.Close()
	base, err := app.AppendBatch(ctx, [][]byte{pingEntry("base")})
	if err != nil {
		t.Fatal(err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for w := 0; w < 20; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			_, err := app.AppendGuarded(ctx, [][]byte{pingEntry(fmt.Sprintf("claim-%d", w))}, base, [][]byte{[]byte("alice")})
			var le *logerr.Error
			switch {
			case err == nil:
				wins.Add(1)
			case errors.As(err, &le) && errors.Is(err, logerr.ErrGuardConflict):
				if le.Uint("conflict_index") <= base {
					t.Errorf("conflict index %d not after %d", le.Uint("conflict_index"), base)
				}
			default:
				t.Errorf("writer %d: %v", w, err)
			}
		}(w)
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d writers claimed the key, want 1", wins.Load())
	}
	last := info(t, c.addrs()[0], true).LastIndex
	// Claiming since the current end succeeds; other keys are independent.
	if _, err := app.AppendGuarded(ctx, [][]byte{pingEntry("again")}, last, [][]byte{[]byte("alice"), []byte("bob")}); err != nil {
		t.Fatalf("claim since the end: %v", err)
	}
	if _, err := app.AppendGuarded(ctx, [][]byte{pingEntry("bad")}, last+5, [][]byte{[]byte("x")}); !errors.Is(err, logerr.ErrPastEnd) {
		t.Fatalf("guard index past the end: %v", err)
	}
	if _, err := app.AppendGuarded(ctx, [][]byte{pingEntry("bad")}, 1, [][]byte{{}}); !errors.Is(err, logerr.ErrInvalidArgument) {
		t.Fatalf("empty guard key: %v", err)
	}
	// A replica restored from a snapshot refuses the same conflicts.
	leader := c.waitLeader()
	if err := leader.Raft().Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	snap := leader.store.Snapshot()
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	snap.Close()
	restored := newCluster(t, 1, nil).servers[0]
	restored.store.Restore(&buf, nil)
	b := restored.store.NewBatch()
	if at, err := b.ClaimedAt([]byte("bob")); err != nil || at != last+1 {
		t.Fatalf("restored claim of bob: %d %v, want %d", at, err, last+1)
	}
	b.Abort()

	// Discarding the prefix drops the claims below it, and guard indexes
	// below the retained log are refused.
	end := info(t, c.addrs()[0], true).LastIndex
	deadline := time.Now().Add(10 * time.Second)
	for info(t, c.addrs()[0], true).ArchivedThrough < end {
		if time.Now().After(deadline) {
			t.Fatal("archive did not catch up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := mustClient(t, c.addrs()[0]).DiscardPrefix(ctx, &logpb.DiscardPrefixRequest{Before: end + 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := app.AppendGuarded(ctx, [][]byte{pingEntry("old")}, base, [][]byte{[]byte("alice")}); !errors.Is(err, logerr.ErrInvalidArgument) {
		t.Fatalf("guard index below the retained log: %v", err)
	}
	for _, s := range c.servers {
		for deadline := time.Now().Add(10 * time.Second); ; {
			if first, _ := s.store.Bounds(); first == end+1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not discard", s.ID())
			}
			time.Sleep(10 * time.Millisecond)
		}
		b := s.store.NewBatch()
		if at, _ := b.ClaimedAt([]byte("alice")); at != 0 {
			t.Fatalf("%s kept the claim of alice at %d after discarding its prefix", s.ID(), at)
		}
		b.Abort()
	}
}
