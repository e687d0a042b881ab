package logsvc

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/snapshot"
	"github.com/akutan/akutan/snapshot/miniotest"
)

// txEntry is a realistic transaction: one new node with an external ID and
// about ten facts about it, in the shape of localstack/demo.facts (a type,
// a name with a language tag, numbers, links to existing nodes).
func txEntry(rng *rand.Rand, i int) []byte {
	node := func(id uint64) *entrypb.NodeRef { return &entrypb.NodeRef{Ref: &entrypb.NodeRef_Id{Id: id}} }
	newNode := &entrypb.NodeRef{Ref: &entrypb.NodeRef_NewNode{NewNode: 0}}
	pred := func() *entrypb.NodeRef { return node(1000 + rng.Uint64N(40)) }
	tx := &entrypb.Transaction{NewNodes: 1}
	add := func(p *entrypb.NodeRef, o *entrypb.Object) {
		tx.Inserts = append(tx.Inserts, &entrypb.Insert{Subject: newNode, Predicate: p, Object: o})
	}
	str := func(s, lang string) *entrypb.Object {
		return &entrypb.Object{Value: &entrypb.Object_String_{String_: &entrypb.LangString{Text: s, Lang: lang}}}
	}
	add(node(7), str("<person-"+strconv.Itoa(i)+">", ""))
	add(node(1001), &entrypb.Object{Value: &entrypb.Object_Node{Node: node(5000 + rng.Uint64N(20))}})
	add(node(1002), str(fmt.Sprintf("Person %d %s", i, []string{"Liddell", "Carroll", "Hatter", "Dodgson"}[rng.IntN(4)]), "en"))
	add(node(1003), &entrypb.Object{Value: &entrypb.Object_Int64{Int64: rng.Int64N(100)}})
	add(node(1004), &entrypb.Object{Value: &entrypb.Object_Timestamp{Timestamp: &entrypb.Timestamp{UnixSeconds: 1.6e9 + rng.Int64N(1e8)}}})
	for k := 0; k < 5; k++ {
		add(pred(), &entrypb.Object{Value: &entrypb.Object_Node{Node: node(rng.Uint64())}})
	}
	b, err := proto.Marshal(&entrypb.Envelope{Version: 1, Command: &entrypb.Envelope_Transaction{Transaction: tx}})
	if err != nil {
		panic(err)
	}
	return b
}

// BenchmarkArchive measures the archiver alone (encode, compress, upload,
// catalog update) on transaction entries of about 330 bytes, in 8 MiB
// segments handed over as the archive loop does (reads of up to 10,000
// entries): raw MB/s of entries archived, MB/s uploaded, and the
// compression ratio, for a local directory and for MinIO.
func BenchmarkArchive(b *testing.B) {
	rawTotal := 128 << 20
	if s := os.Getenv("AKUTAN_ARCHIVE_BENCH_MB"); s != "" {
		if n, err := strconv.Atoi(s); err == nil {
			rawTotal = n << 20
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var entries []Entry
	size := 0
	for i := 0; size < rawTotal; i++ {
		e := txEntry(rng, i)
		entries = append(entries, Entry{Index: uint64(i + 1), Data: e})
		size += len(e)
	}
	stores := map[string]func(b *testing.B) snapshot.Store{
		"dir": func(b *testing.B) snapshot.Store { return newDirStore(b) },
	}
	if minioAvailable(b) {
		stores["minio"] = func(b *testing.B) snapshot.Store { return miniotest.Start(b).Store(b, "bench") }
	}
	for _, name := range []string{"dir", "minio"} {
		open, ok := stores[name]
		if !ok {
			continue
		}
		b.Run("store="+name, func(b *testing.B) {
			var raw, stored int64
			var elapsed time.Duration
			for it := 0; it < b.N; it++ {
				store := open(b)
				ctx := context.Background()
				a := NewSegmentArchiver(store, DefaultSegmentConfig())
				start := time.Now()
				for i := 0; i < len(entries); i += 10000 {
					if _, err := a.Archive(ctx, entries[i:min(i+10000, len(entries))]); err != nil {
						b.Fatal(err)
					}
				}
				if through, err := a.Flush(ctx); err != nil || through != uint64(len(entries)) {
					b.Fatalf("flush: %d %v", through, err)
				}
				elapsed += time.Since(start)
				cat, _, err := snapshot.LoadLogCatalog(ctx, store)
				if err != nil {
					b.Fatal(err)
				}
				for _, s := range cat.Segments {
					raw += s.RawBytes
					stored += s.Size
				}
			}
			b.ReportMetric(float64(raw)/elapsed.Seconds()/1e6, "raw-MB/s")
			b.ReportMetric(float64(stored)/elapsed.Seconds()/1e6, "stored-MB/s")
			b.ReportMetric(float64(raw)/float64(stored), "ratio")
			b.ReportMetric(float64(len(entries)*b.N)/elapsed.Seconds(), "entries/s")
			b.ReportMetric(float64(raw)/float64(len(entries)*b.N), "B/entry")
			b.ReportMetric(0, "ns/op")
		})
	}
}
