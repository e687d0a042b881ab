package viewsvc

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sort"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/model"
	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/viewsvc/internal/keys"
)

// Builders for log entries.

func idRef(id uint64) *entrypb.NodeRef { return &entrypb.NodeRef{Ref: &entrypb.NodeRef_Id{Id: id}} }
func newRef(k uint32) *entrypb.NodeRef {
	return &entrypb.NodeRef{Ref: &entrypb.NodeRef_NewNode{NewNode: k}}
}

func nodeObj(id uint64) *entrypb.Object {
	return &entrypb.Object{Value: &entrypb.Object_Node{Node: idRef(id)}}
}
func newNodeObj(k uint32) *entrypb.Object {
	return &entrypb.Object{Value: &entrypb.Object_Node{Node: newRef(k)}}
}
func strObj(text, lang string) *entrypb.Object {
	return &entrypb.Object{Value: &entrypb.Object_String_{String_: &entrypb.LangString{Text: text, Lang: lang}}}
}
func intObj(v int64) *entrypb.Object { return &entrypb.Object{Value: &entrypb.Object_Int64{Int64: v}} }
func floatObj(v float64) *entrypb.Object {
	return &entrypb.Object{Value: &entrypb.Object_Float64{Float64: v}}
}
func boolObj(v bool) *entrypb.Object { return &entrypb.Object{Value: &entrypb.Object_Bool{Bool: v}} }
func tsObj(sec int64, nanos int32, p entrypb.Timestamp_Precision) *entrypb.Object {
	return &entrypb.Object{Value: &entrypb.Object_Timestamp{Timestamp: &entrypb.Timestamp{UnixSeconds: sec, Nanos: nanos, Precision: p}}}
}

type txBuilder struct{ tx entrypb.Transaction }

func newTx(newNodes uint32) *txBuilder {
	return &txBuilder{tx: entrypb.Transaction{NewNodes: newNodes}}
}

func (b *txBuilder) insert(s, p *entrypb.NodeRef, o *entrypb.Object) *txBuilder {
	b.tx.Inserts = append(b.tx.Inserts, &entrypb.Insert{Subject: s, Predicate: p, Object: o})
	return b
}

func (b *txBuilder) deleteID(id uint64) *txBuilder {
	b.tx.Deletes = append(b.tx.Deletes, &entrypb.Delete{Target: &entrypb.Delete_FactId{FactId: id}})
	return b
}

func (b *txBuilder) deleteSPO(s, p uint64, o *entrypb.Object) *txBuilder {
	b.tx.Deletes = append(b.tx.Deletes, &entrypb.Delete{Target: &entrypb.Delete_Triple{
		Triple: &entrypb.Triple{Subject: s, Predicate: p, Object: o}}})
	return b
}

func (b *txBuilder) held() *txBuilder {
	b.tx.NeedsDecision = true
	return b
}

func (b *txBuilder) bytes() []byte {
	return envBytes(&entrypb.Envelope{Version: 1, Command: &entrypb.Envelope_Transaction{Transaction: &b.tx}})
}

func envBytes(env *entrypb.Envelope) []byte {
	b, err := proto.Marshal(env)
	if err != nil {
		panic(err)
	}
	return b
}

func decisionEntry(txIndex uint64, commit bool) []byte {
	return envBytes(&entrypb.Envelope{Version: 1, Command: &entrypb.Envelope_Decision{
		Decision: &entrypb.Decision{TxIndex: txIndex, Commit: commit}}})
}

func versionEntry(envVersion, to uint32) []byte {
	return envBytes(&entrypb.Envelope{Version: envVersion, Command: &entrypb.Envelope_VersionChange{
		VersionChange: &entrypb.VersionChange{ToVersion: to}}})
}

func pingEntry(version uint32) []byte {
	return envBytes(&entrypb.Envelope{Version: version, Command: &entrypb.Envelope_Ping{Ping: &entrypb.Ping{Nonce: []byte("x")}}})
}

// Views.

func testConfig(t testing.TB, space Space, rng HashRange) Config {
	cfg := DefaultConfig()
	cfg.Space, cfg.Range, cfg.Dir = space, rng, t.TempDir()
	cfg.CacheSize = 8 << 20
	cfg.HeadCacheFacts = 50 // rotate often, to test it
	cfg.MemTableSize = 4 << 20
	cfg.CaughtUpIdle = 20 * time.Millisecond
	cfg.RetryMin, cfg.RetryMax = 5*time.Millisecond, 50*time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return cfg
}

// runner runs a view against a log until stopped.
type runner struct {
	t      testing.TB
	v      *View
	cancel context.CancelFunc
	done   chan error
}

func openView(t testing.TB, cfg Config) *View {
	t.Helper()
	v, err := Open(cfg)
	if err != nil {
		t.Fatalf("open view: %v", err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v
}

func start(t testing.TB, v *View, log LogReader) *runner {
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{t: t, v: v, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- v.Run(ctx, log) }()
	t.Cleanup(r.stop)
	return r
}

func (r *runner) stop() {
	r.cancel()
	<-r.done
	r.done <- nil // let a second stop return
}

func waitApplied(t testing.TB, v *View, index uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := v.WaitApplied(ctx, index); err != nil {
		t.Fatalf("wait for index %d: %v (status %+v)", index, err, v.Status())
	}
}

// Reading facts back.

type factRow struct {
	lookup int
	id     uint64
	s, p   uint64
	obj    string // encoding
	index  uint64
}

func (f factRow) String() string {
	return fmt.Sprintf("#%d id=%d (%d %d %x) @%d", f.lookup, f.id, f.s, f.p, f.obj, f.index)
}

func encObj(t testing.TB, o *entrypb.Object) string {
	b, err := model.AppendObject(nil, o, model.IDOnly)
	if err != nil {
		t.Fatalf("encode %v: %v", o, err)
	}
	return string(b)
}

func lookupRows(t testing.TB, v *View, index uint64, lookups []Lookup) ([]factRow, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rows []factRow
	err := v.Lookup(ctx, index, lookups, func(i int, f Fact) error {
		rows = append(rows, factRow{lookup: i, id: f.ID, s: f.Subject, p: f.Predicate, obj: encObj(t, f.Object), index: f.Index})
		return nil
	})
	return rows, err
}

// allFacts lists every fact visible at index, sorted by id.
func allFacts(t testing.TB, v *View, index uint64) []factRow {
	t.Helper()
	if err := v.acquire(); err != nil {
		t.Fatal(err)
	}
	defer v.readers.Done()
	it, err := v.db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeQuietly(it)
	table := keys.FactsTable(v.cfg.Space)
	var rows []factRow
	var buf []byte
	err = v.scanRaw(context.Background(), it, &scan{lo: []byte{table}, hi: []byte{table + 1}}, index, &buf,
		func(id, s, p uint64, obj []byte, ver uint64) {
			rows = append(rows, factRow{id: id, s: s, p: p, obj: string(obj), index: ver})
		})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].id < rows[j].id })
	return rows
}

var halfRange = uint64(math.MaxUint64/2) + 1 // 2^63
