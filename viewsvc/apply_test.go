package viewsvc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/proto/viewpb"
)

// waitStopped waits until the view stops applying and returns its status.
func waitStopped(t *testing.T, v *View) Status {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if st := v.Status(); st.Err != nil {
			return st
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("view did not stop: %+v", v.Status())
	return Status{}
}

// TestBadEntries: an entry of a log version the view does not support stops
// it at that entry with a clear error, reported by Status and every RPC, and
// the view keeps answering at the indexes it applied. A restart stops at the
// same entry again.
func TestBadEntries(t *testing.T) {
	good := newTx(1).insert(newRef(1), idRef(100), intObj(1)).bytes()
	cases := []struct {
		name    string
		max     uint32
		entries [][]byte
		stopAt  uint64
		want    string
		reason  string
	}{
		{"envelope version above supported", 1, [][]byte{good, pingEntry(2)}, 2,
			"unsupported log version 2 (supports up to 1)", "UNSUPPORTED_VERSION"},
		{"version change above supported", 1, [][]byte{good, versionEntry(1, 2), good}, 2,
			"unsupported log version 2 (supports up to 1)", "UNSUPPORTED_VERSION"},
		{"after a supported version change", 2, [][]byte{good, versionEntry(1, 2), pingEntry(2), pingEntry(1), good, versionEntry(2, 3)}, 6,
			"unsupported log version 3 (supports up to 2)", "UNSUPPORTED_VERSION"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			log := NewMemLog()
			log.Append(c.entries...)
			cfg := testConfig(t, SpaceSP, FullRange)
			cfg.MaxSupportedVersion = c.max
			for restart := range 2 {
				v := openView(t, cfg)
				r := start(t, v, log)
				st := waitStopped(t, v)
				if st.LastApplied != c.stopAt-1 || st.State != viewpb.State_STOPPED || !strings.Contains(st.Err.Error(), c.want) ||
					!strings.Contains(st.Err.Error(), fmt.Sprintf("log index %d:", c.stopAt)) {
					t.Fatalf("restart %d: status %+v; want stop before %d with %q", restart, st, c.stopAt, c.want)
				}
				client := serve(t, v)
				status, err := client.Status(t.Context(), &viewpb.StatusRequest{})
				if err != nil || status.State != viewpb.State_STOPPED || !strings.Contains(status.Error, c.want) ||
					status.MaxSupportedVersion != c.max {
					t.Errorf("Status RPC: %v %v", status, err)
				}
				// Applied indexes are still served, and say why the view stopped.
				resps, err := recvAll(client.LookupS(t.Context(), &viewpb.LookupSRequest{Index: c.stopAt - 1, Subjects: []uint64{1<<20 | 1}}))
				if err != nil || len(resps) != 1 || len(resps[0].Facts) != 1 || !strings.Contains(resps[0].ViewError, c.want) {
					t.Errorf("lookup at an applied index: %v %v", resps, err)
				}
				d, err := client.Digest(t.Context(), &viewpb.DigestRequest{Index: c.stopAt - 1})
				if err != nil || !strings.Contains(d.ViewError, c.want) {
					t.Errorf("digest at an applied index: %v %v", d, err)
				}
				// Later indexes fail at once rather than wait out the deadline.
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
				_, err = recvAll(client.LookupS(ctx, &viewpb.LookupSRequest{Index: c.stopAt, Subjects: []uint64{1}}))
				cancel()
				wantCode(t, err, codes.FailedPrecondition, c.reason, c.want)
				_, err = client.Digest(t.Context(), &viewpb.DigestRequest{Index: c.stopAt + 5})
				wantCode(t, err, codes.FailedPrecondition, c.reason, c.want)
				r.stop()
				if err := v.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestRejectedEntries: the log accepted every entry, so no invalid entry
// may stop a view. Each is applied as a no-op, recorded with its reason in
// Status, and the view goes on: it ends with the same digest as a view whose
// log held a ping in that place, and the record survives a restart.
func TestRejectedEntries(t *testing.T) {
	good := newTx(1).insert(newRef(1), idRef(100), intObj(1)).bytes()
	after := newTx(1).insert(newRef(1), idRef(100), intObj(2)).bytes()
	unknownField := protowire.AppendTag(envBytes(&entrypb.Envelope{Version: 1}), 9, protowire.BytesType)
	unknownField = protowire.AppendBytes(unknownField, []byte("future command"))
	cases := []struct {
		name string
		max  uint32
		bad  []byte
		want string
	}{
		{"envelope above the log version", 2, pingEntry(2), "envelope version 2 is above the log version 1"},
		{"version change that does not raise", 2, versionEntry(1, 1), "version change to 1 does not raise the log version 1"},
		{"version 0", 1, pingEntry(0), "envelope version is 0"},
		{"garbage", 1, []byte("\xff\xff\xff not protobuf"), "malformed log entry: not an envelope"},
		{"no command", 1, envBytes(&entrypb.Envelope{Version: 1}), "unknown log command"},
		{"unknown command", 1, unknownField, "unknown log command"},
		{"new node out of range", 1, newTx(1).insert(newRef(2), idRef(1), intObj(1)).bytes(), "insert 0: subject: new node 2 of 1"},
		{"insert without object", 1, newTx(0).insert(idRef(1), idRef(1), nil).bytes(), "insert 0: invalid object: missing object"},
		{"held transaction is checked at its index", 1, newTx(0).insert(idRef(1), nil, intObj(1)).held().bytes(), "insert 0: predicate: node reference is empty"},
		{"bad timestamp", 1, newTx(0).insert(idRef(1), idRef(1), tsObj(0, -1, 0)).bytes(), "timestamp nanos -1"},
		{"node from a later index", 1, newTx(0).insert(idRef(5<<20|1), idRef(1), intObj(1)).bytes(), "insert 0: subject: node id 5242881 is from index 5, not before this entry"},
		{"fact from this index", 1, newTx(0).deleteID(2<<20 | 1).bytes(), "delete 0: fact id 2097153 is from index 2"},
		{"decision for a later index", 1, decisionEntry(5, true), "decision for index 5, which is not before it"},
		{"delete of nothing", 1, envBytes(&entrypb.Envelope{Version: 1, Command: &entrypb.Envelope_Transaction{
			Transaction: &entrypb.Transaction{Deletes: []*entrypb.Delete{{}}}}}), "delete 0 names no fact"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			log, clean := NewMemLog(), NewMemLog()
			log.Append(good, c.bad, after)
			clean.Append(good, pingEntry(1), after)
			cfg := testConfig(t, SpaceSP, FullRange)
			cfg.MaxSupportedVersion = c.max
			for restart := range 2 {
				v := openView(t, cfg)
				r := start(t, v, log)
				waitApplied(t, v, 3)
				st := v.Status()
				if st.Err != nil || st.Rejected.Count != 1 || st.Rejected.LastIndex != 2 || !strings.Contains(st.Rejected.LastReason, c.want) {
					t.Fatalf("restart %d: status %+v; want one rejected entry at 2 with %q", restart, st, c.want)
				}
				client := serve(t, v)
				status, err := client.Status(t.Context(), &viewpb.StatusRequest{})
				if err != nil || status.Error != "" || status.RejectedEntries != 1 || status.LastRejectedIndex != 2 ||
					!strings.Contains(status.LastRejectedReason, c.want) {
					t.Errorf("Status RPC: %v %v", status, err)
				}
				r.stop()
				if err := v.Close(); err != nil {
					t.Fatal(err)
				}
			}
			v := openView(t, cfg)
			defer v.Close()
			cfg2 := testConfig(t, SpaceSP, FullRange)
			cfg2.MaxSupportedVersion = c.max
			w := openView(t, cfg2)
			defer w.Close()
			r := start(t, w, clean)
			defer r.stop()
			waitApplied(t, w, 3)
			a, err := v.Digest(t.Context(), 3)
			if err != nil {
				t.Fatal(err)
			}
			b, err := w.Digest(t.Context(), 3)
			if err != nil || a != b || a.Facts != 2 {
				t.Fatalf("digest with the rejected entry %+v, with a ping %+v (%v)", a, b, err)
			}
		})
	}
}

// TestDecisions checks held transactions: visible at the decision, ids from
// their own index, only the first decision counts, and they survive a
// restart.
func TestDecisions(t *testing.T) {
	log := NewMemLog()
	log.Append(
		newTx(1).insert(newRef(1), idRef(100), intObj(1)).held().bytes(), // 1: held
		newTx(0).insert(idRef(7), idRef(100), intObj(2)).held().bytes(),  // 2: held
		newTx(0).insert(idRef(7), idRef(100), intObj(3)).held().bytes(),  // 3: held
		pingEntry(1),            // 4
		decisionEntry(1, true),  // 5: commit 1
		decisionEntry(2, false), // 6: abort 2
		decisionEntry(2, true),  // 7: too late, ignored
		decisionEntry(4, true),  // 8: names a ping, ignored
	)
	cfg := testConfig(t, SpaceSP, FullRange)
	v := openView(t, cfg)
	r := start(t, v, log)
	waitApplied(t, v, 8)
	r.stop()
	_ = v.Close()
	v = openView(t, cfg) // the pending transaction 3 must survive this
	start(t, v, log)
	log.Append(decisionEntry(3, true), decisionEntry(3, false)) // 9, 10
	waitApplied(t, v, 10)
	check := func(index uint64, want ...string) {
		t.Helper()
		var got []string
		for _, f := range allFacts(t, v, index) {
			got = append(got, fmt.Sprintf("%d@%d", f.id, f.index))
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("at %d: %v, want %v", index, got, want)
		}
	}
	check(4)
	check(5, fmt.Sprintf("%d@5", 1<<20|2))
	check(8, fmt.Sprintf("%d@5", 1<<20|2))
	check(10, fmt.Sprintf("%d@5", 1<<20|2), fmt.Sprintf("%d@9", 3<<20|1))
	rows, err := lookupRows(t, v, 10, []Lookup{{Kind: LookupS, Subject: 1<<20 | 1}})
	if err != nil || len(rows) != 1 {
		t.Errorf("the held transaction's new node: %v %v", rows, err)
	}
}

// flakyLog fails its first streams part-way and once delivers an entry
// twice, like a reader failing over badly; the view must neither skip nor
// repeat anything.
type flakyLog struct {
	*MemLog
	mu    sync.Mutex
	calls int
}

func (f *flakyLog) Stream(ctx context.Context, from uint64, fn func([]LogEntry) error) error {
	f.mu.Lock()
	f.calls++
	call := f.calls
	f.mu.Unlock()
	if call > 3 {
		return f.MemLog.Stream(ctx, from, fn)
	}
	delivered := 0
	err := f.MemLog.Stream(ctx, from, func(entries []LogEntry) error {
		if call == 2 {
			entries = append(entries[:1:1], entries...) // a duplicate
		}
		if err := fn(entries); err != nil {
			return err
		}
		delivered += len(entries)
		if delivered >= 5 {
			return errors.New("replica went away")
		}
		return nil
	})
	return err
}

func TestLogReaderFailures(t *testing.T) {
	ds := makeDataset(3, 2000, 20, true, 0)
	mem := NewMemLog()
	mem.MaxBatch = 2
	mem.Append(ds.entries...)
	flaky := &flakyLog{MemLog: mem}
	v := openView(t, testConfig(t, SpacePO, FullRange))
	start(t, v, flaky)
	last, _ := mem.LastIndex(t.Context())
	waitApplied(t, v, last)
	twin := openView(t, testConfig(t, SpacePO, FullRange))
	start(t, twin, mem)
	waitApplied(t, twin, last)
	for _, index := range []uint64{1, 3, 5, 8, 13, last} {
		a, err1 := v.Digest(t.Context(), index)
		b, err2 := twin.Digest(t.Context(), index)
		if err1 != nil || err2 != nil || !a.Equal(b) {
			t.Errorf("index %d: %v %v, twin %v %v", index, a, err1, b, err2)
		}
	}
	if st := v.Status(); st.Err != nil || st.State != viewpb.State_SERVING {
		t.Errorf("status %+v", st)
	}
}

func TestOpenChecksIdentity(t *testing.T) {
	cfg := testConfig(t, SpaceSP, HashRange{Start: 5})
	v := openView(t, cfg)
	_ = v.Close()
	for _, c := range []Config{
		func() Config { c := cfg; c.Space = SpacePO; return c }(),
		func() Config { c := cfg; c.Range = FullRange; return c }(),
	} {
		if _, err := Open(c); !errors.Is(err, ErrConfigMismatch) {
			t.Errorf("open with %v %v: %v", c.Space, c.Range, err)
		}
	}
	bad := cfg
	bad.Dir, bad.Space, bad.Range, bad.MaxLookups = "", 0, HashRange{Start: 9, End: 9}, 0
	err := bad.Validate()
	for _, want := range []string{"space", "empty", "data directory", "max lookups"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want it to mention %q", err, want)
		}
	}
}

func TestStates(t *testing.T) {
	log := NewMemLog()
	log.Append(newTx(0).insert(idRef(1), idRef(2), intObj(3)).bytes())
	v := openView(t, testConfig(t, SpaceSP, FullRange))
	if st := v.Status(); st.State != viewpb.State_BOOTING {
		t.Errorf("before Run: %v", st.State)
	}
	// Without a LogTail the view decides it caught up once the log is idle.
	start(t, v, struct{ LogReader }{log})
	deadline := time.Now().Add(5 * time.Second)
	for v.Status().State != viewpb.State_SERVING {
		if time.Now().After(deadline) {
			t.Fatalf("never serving: %+v", v.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
