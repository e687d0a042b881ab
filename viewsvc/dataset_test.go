package viewsvc

import (
	"math/rand/v2"

	"github.com/akutan/akutan/proto/entrypb"
)

// dataset is a synthetic knowledge graph written as a log, for the
// determinism test and the benchmarks. Each transaction creates perTx/20 new
// nodes and inserts perTx facts:
//   - subject: a node created by this transaction (1/2) or an earlier node;
//   - predicate: one of 200 predicates;
//   - object: an earlier node (40%), a string of 5 to 20 letters (30%, a
//     fifth of them tagged "en"), an int64 (20%), a float64 (5%) or a
//     timestamp (5%).
//
// With deletes set, a transaction also deletes a few earlier facts, by id
// and by triple, and re-inserts some.
type dataset struct {
	entries [][]byte
	facts   int       // inserts written
	probes  []*Lookup // LookupSPO of facts that were inserted, for benchmarks
}

const (
	firstPredicate = 1000
	numPredicates  = 200
)

func makeDataset(seed uint64, facts, perTx int, deletes bool, probeEvery int) *dataset {
	r := rand.New(rand.NewPCG(seed, 42))
	ds := &dataset{}
	nodes := []uint64{1, 2, 3, 4, 5}
	var written []*entrypb.Triple
	var writtenIDs []uint64
	letters := "abcdefghijklmnopqrstuvwxyz"
	strBuf := make([]byte, 20)
	for index := uint64(1); ds.facts < facts; index++ {
		n := min(perTx, facts-ds.facts)
		newNodes := uint32(max(1, n/20))
		base := index << 20
		tx := &entrypb.Transaction{NewNodes: newNodes, Inserts: make([]*entrypb.Insert, 0, n)}
		before := len(written) // facts of earlier transactions
		if deletes && before > 0 {
			for range 1 + r.IntN(3) {
				if r.IntN(2) == 0 {
					tx.Deletes = append(tx.Deletes, &entrypb.Delete{Target: &entrypb.Delete_FactId{FactId: writtenIDs[r.IntN(before)]}})
				} else {
					tx.Deletes = append(tx.Deletes, &entrypb.Delete{Target: &entrypb.Delete_Triple{Triple: written[r.IntN(before)]}})
				}
			}
		}
		for i := range n {
			var subject *entrypb.NodeRef
			var s uint64
			if r.IntN(2) == 0 {
				k := uint32(1 + r.IntN(int(newNodes)))
				subject, s = newRef(k), base|uint64(k)
			} else {
				s = nodes[r.IntN(len(nodes))]
				subject = idRef(s)
			}
			p := uint64(firstPredicate + r.IntN(numPredicates))
			var o *entrypb.Object
			switch x := r.IntN(100); {
			case x < 40:
				o = nodeObj(nodes[r.IntN(len(nodes))])
			case x < 70:
				l := 5 + r.IntN(16)
				for j := range l {
					strBuf[j] = letters[r.IntN(len(letters))]
				}
				lang := ""
				if r.IntN(5) == 0 {
					lang = "en"
				}
				o = strObj(string(strBuf[:l]), lang)
			case x < 90:
				o = intObj(int64(r.Uint64()) >> r.IntN(60))
			case x < 95:
				o = floatObj(r.NormFloat64() * 1e6)
			default:
				o = tsObj(int64(r.IntN(2_000_000_000)), 0, entrypb.Timestamp_SECOND)
			}
			if deletes && before > 0 && r.IntN(20) == 0 {
				// Re-insert an earlier fact, live or deleted.
				tr := written[r.IntN(before)]
				subject, s, p, o = idRef(tr.Subject), tr.Subject, tr.Predicate, tr.Object
			}
			tx.Inserts = append(tx.Inserts, &entrypb.Insert{Subject: subject, Predicate: idRef(p), Object: o})
			if deletes {
				written = append(written, &entrypb.Triple{Subject: s, Predicate: p, Object: o})
				writtenIDs = append(writtenIDs, base|uint64(newNodes)+1+uint64(i))
			}
			if probeEvery > 0 && ds.facts%probeEvery == 0 {
				ds.probes = append(ds.probes, &Lookup{Kind: LookupSPO, Subject: s, Predicate: p, Object: o})
			}
			ds.facts++
		}
		for k := uint64(1); k <= uint64(newNodes); k++ {
			nodes = append(nodes, base|k)
		}
		ds.entries = append(ds.entries, envBytes(&entrypb.Envelope{Version: 1, Command: &entrypb.Envelope_Transaction{Transaction: tx}}))
	}
	return ds
}
