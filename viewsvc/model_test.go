package viewsvc

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cespare/xxhash/v2"
	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/model"
	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/proto/viewpb"
)

// refModel is a plain in-memory reading of the log, written from entry.proto
// and the package doc without the view's code.
type refModel struct {
	t        testing.TB
	versions map[triple][]mVersion
	pending  map[uint64]*entrypb.Transaction
	applied  uint64
}

type triple struct {
	s, p uint64
	obj  string // object encoding
}

type mVersion struct {
	index uint64
	live  bool
	id    uint64
}

func newModel(t testing.TB) *refModel {
	return &refModel{t: t, versions: map[triple][]mVersion{}, pending: map[uint64]*entrypb.Transaction{}}
}

func (m *refModel) head(tr triple) mVersion {
	vs := m.versions[tr]
	if len(vs) == 0 {
		return mVersion{}
	}
	return vs[len(vs)-1]
}

func (m *refModel) set(tr triple, v mVersion) {
	vs := m.versions[tr]
	if len(vs) > 0 && vs[len(vs)-1].index == v.index {
		vs[len(vs)-1] = v
	} else {
		vs = append(vs, v)
	}
	m.versions[tr] = vs
}

func (m *refModel) apply(index uint64, data []byte) {
	var env entrypb.Envelope
	if err := proto.Unmarshal(data, &env); err != nil {
		m.t.Fatal(err)
	}
	m.applied = index
	switch c := env.Command.(type) {
	case *entrypb.Envelope_Transaction:
		if c.Transaction.NeedsDecision {
			m.pending[index] = c.Transaction
			return
		}
		m.applyTx(c.Transaction, index, index)
	case *entrypb.Envelope_Decision:
		tx, ok := m.pending[c.Decision.TxIndex]
		if !ok {
			return
		}
		delete(m.pending, c.Decision.TxIndex)
		if c.Decision.Commit {
			m.applyTx(tx, c.Decision.TxIndex, index)
		}
	}
}

func (m *refModel) applyTx(tx *entrypb.Transaction, idIndex, at uint64) {
	ref := func(r *entrypb.NodeRef) uint64 {
		if r.GetRef() == nil {
			m.t.Fatal("empty ref")
		}
		if id, ok := r.Ref.(*entrypb.NodeRef_Id); ok {
			return id.Id
		}
		return idIndex<<20 | uint64(r.GetNewNode())
	}
	objKey := func(o *entrypb.Object) string {
		if n, ok := o.Value.(*entrypb.Object_Node); ok {
			return encObj(m.t, nodeObj(ref(n.Node)))
		}
		return encObj(m.t, o)
	}
	for _, d := range tx.Deletes {
		var target triple
		found := false
		switch x := d.Target.(type) {
		case *entrypb.Delete_FactId:
			for tr, vs := range m.versions {
				if h := vs[len(vs)-1]; h.live && h.id == x.FactId {
					target, found = tr, true
				}
			}
		case *entrypb.Delete_Triple:
			target = triple{x.Triple.Subject, x.Triple.Predicate, objKey(x.Triple.Object)}
			found = m.head(target).live
		}
		if found {
			m.set(target, mVersion{index: at})
		}
	}
	for i, ins := range tx.Inserts {
		tr := triple{ref(ins.Subject), ref(ins.Predicate), objKey(ins.Object)}
		if m.head(tr).live {
			continue
		}
		m.set(tr, mVersion{index: at, live: true, id: idIndex<<20 | uint64(tx.NewNodes) + 1 + uint64(i)})
	}
}

// visible lists the facts visible at index whose hash in space is in rng.
func (m *refModel) visible(index uint64, space Space, rng HashRange) []factRow {
	var rows []factRow
	for tr, vs := range m.versions {
		var cur *mVersion
		for i := range vs {
			if vs[i].index <= index {
				cur = &vs[i]
			}
		}
		if cur == nil || !cur.live {
			continue
		}
		if !rng.Contains(modelHash(space, tr)) {
			continue
		}
		rows = append(rows, factRow{id: cur.id, s: tr.s, p: tr.p, obj: tr.obj, index: cur.index})
	}
	return rows
}

func modelHash(space Space, tr triple) uint64 {
	var b []byte
	if space == SpaceSP {
		b = binary.BigEndian.AppendUint64(b, tr.s)
		b = binary.BigEndian.AppendUint64(b, tr.p)
	} else {
		b = binary.BigEndian.AppendUint64(b, tr.p)
		b = append(b, tr.obj...)
	}
	return xxhash.Sum64(b)
}

func modelDigest(rows []factRow) Digest {
	var d Digest
	for _, r := range rows {
		var b []byte
		for _, x := range []uint64{r.id, r.s, r.p, r.index} {
			b = binary.BigEndian.AppendUint64(b, x)
		}
		b = append(b, r.obj...)
		d.Facts++
		d.Sum1 += xxhash.Sum64(b)
		h := xxhash.NewWithSeed(1)
		_, _ = h.Write(b)
		d.Sum2 += h.Sum64()
	}
	return d
}

// answer is what lookups should return, in the documented order.
func (m *refModel) answer(index uint64, space Space, rng HashRange, lookups []Lookup) []factRow {
	vis := m.visible(index, space, rng)
	var out []factRow
	for i, l := range lookups {
		var match []factRow
		for _, f := range vis {
			if modelMatch(m.t, l, f) {
				f.lookup = i
				match = append(match, f)
			}
		}
		slices.SortFunc(match, func(a, b factRow) int {
			switch l.Kind {
			case LookupS:
				return cmp.Or(cmp.Compare(a.p, b.p), cmp.Compare(a.obj, b.obj))
			case LookupSP, LookupSPO:
				return cmp.Compare(a.obj, b.obj)
			case LookupPO:
				return cmp.Compare(a.s, b.s)
			}
			return cmp.Or(cmp.Compare(a.obj, b.obj), cmp.Compare(a.s, b.s))
		})
		out = append(out, match...)
	}
	return out
}

func modelMatch(t testing.TB, l Lookup, f factRow) bool {
	switch l.Kind {
	case LookupS:
		return f.s == l.Subject
	case LookupSP:
		return f.s == l.Subject && f.p == l.Predicate
	case LookupSPO:
		return f.s == l.Subject && f.p == l.Predicate && f.obj == encObj(t, l.Object)
	case LookupPO:
		return f.p == l.Predicate && f.obj == encObj(t, l.Object)
	}
	if f.p != l.Predicate {
		return false
	}
	o := encObj(t, l.Object)
	if l.Op == viewpb.CmpOp_PREFIX {
		fo, err := decodeForTest(f.obj)
		if err != nil {
			t.Fatal(err)
		}
		s, ok := fo.Value.(*entrypb.Object_String_)
		return ok && len(s.String_.Text) >= len(l.Object.GetString_().GetText()) &&
			s.String_.Text[:len(l.Object.GetString_().GetText())] == l.Object.GetString_().GetText()
	}
	if f.obj[0] != o[0] {
		return false // comparisons stay within the operand's type
	}
	c := cmp.Compare(f.obj, o)
	switch l.Op {
	case viewpb.CmpOp_EQ:
		return c == 0
	case viewpb.CmpOp_LT:
		return c < 0
	case viewpb.CmpOp_LE:
		return c <= 0
	case viewpb.CmpOp_GT:
		return c > 0
	case viewpb.CmpOp_GE:
		return c >= 0
	case viewpb.CmpOp_BETWEEN:
		return c >= 0 && f.obj <= encObj(t, l.Upper)
	}
	t.Fatalf("op %v", l.Op)
	return false
}

// gen makes random transactions over a small universe, so that duplicate
// inserts, re-inserts and deletes of live and dead facts are common.
type gen struct {
	r        *rand.Rand
	nodes    []uint64 // known node ids
	preds    []uint64
	factIDs  []uint64 // ids that existed at some point, plus junk
	triples  []*entrypb.Triple
	pending  []uint64
	decided  []uint64
	index    uint64 // index of the last entry generated
	objects  []*entrypb.Object
	newNodes uint32
}

func newGen(seed uint64) *gen {
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	for i := uint64(1); i <= 6; i++ {
		g.nodes = append(g.nodes, i)
	}
	g.preds = []uint64{101, 102, 103}
	g.objects = []*entrypb.Object{
		strObj("", ""), strObj("a", ""), strObj("a", "en"), strObj("ab", ""), strObj("ab", "fr"),
		strObj("b", ""), strObj("a\x00", ""), strObj("abc", "en"),
		intObj(math.MinInt64), intObj(-5), intObj(0), intObj(1), intObj(7), intObj(math.MaxInt64),
		floatObj(math.Inf(-1)), floatObj(-2.5), floatObj(math.Copysign(0, -1)), floatObj(0), floatObj(1.5), floatObj(math.NaN()),
		boolObj(false), boolObj(true),
		tsObj(-100, 0, entrypb.Timestamp_YEAR), tsObj(1700000000, 5, entrypb.Timestamp_SECOND), tsObj(1700000000, 5, entrypb.Timestamp_DAY),
	}
	return g
}

func (g *gen) node() uint64 { return g.nodes[g.r.IntN(len(g.nodes))] }

func (g *gen) object() *entrypb.Object {
	if g.r.IntN(3) == 0 {
		return nodeObj(g.node())
	}
	return g.objects[g.r.IntN(len(g.objects))]
}

func (g *gen) ref() *entrypb.NodeRef {
	if g.newNodes > 0 && g.r.IntN(4) == 0 {
		return newRef(uint32(1 + g.r.IntN(int(g.newNodes))))
	}
	return idRef(g.node())
}

// next returns the next entry.
func (g *gen) next() []byte {
	g.index++
	idx := g.index
	switch x := g.r.IntN(20); {
	case x == 0:
		return pingEntry(1)
	case x <= 2 && len(g.pending) > 0:
		i := g.r.IntN(len(g.pending))
		tx := g.pending[i]
		g.pending = append(g.pending[:i], g.pending[i+1:]...)
		g.decided = append(g.decided, tx)
		return decisionEntry(tx, g.r.IntN(3) > 0)
	case x == 3 && len(g.decided) > 0:
		// A repeated decision, or one for an index that was never held.
		if g.r.IntN(2) == 0 {
			return decisionEntry(g.decided[g.r.IntN(len(g.decided))], g.r.IntN(2) == 0)
		}
		return decisionEntry(uint64(1+g.r.IntN(int(idx-1))), true)
	}
	g.newNodes = uint32(g.r.IntN(3))
	b := newTx(g.newNodes)
	for range g.r.IntN(3) {
		switch {
		case g.r.IntN(2) == 0 && len(g.factIDs) > 0:
			b.deleteID(g.factIDs[g.r.IntN(len(g.factIDs))])
		case len(g.triples) > 0 && g.r.IntN(4) == 0:
			// Mix parts of different facts: usually not a fact at all.
			n := len(g.triples)
			b.deleteSPO(g.triples[g.r.IntN(n)].Subject, g.triples[g.r.IntN(n)].Predicate, g.triples[g.r.IntN(n)].Object)
		case len(g.triples) > 0:
			tr := g.triples[g.r.IntN(len(g.triples))]
			b.deleteSPO(tr.Subject, tr.Predicate, tr.Object)
		}
	}
	n := 1 + g.r.IntN(5)
	for i := range n {
		if i > 0 && g.r.IntN(6) == 0 {
			// Duplicate an earlier insert of this transaction.
			prev := b.tx.Inserts[g.r.IntN(len(b.tx.Inserts))]
			b.tx.Inserts = append(b.tx.Inserts, prev)
			continue
		}
		if len(g.triples) > 0 && g.r.IntN(4) == 0 {
			// Re-insert a fact that may be live or deleted.
			tr := g.triples[g.r.IntN(len(g.triples))]
			b.insert(idRef(tr.Subject), idRef(tr.Predicate), tr.Object)
			continue
		}
		s, o := g.ref(), g.object()
		if g.newNodes > 0 && g.r.IntN(5) == 0 {
			o = newNodeObj(uint32(1 + g.r.IntN(int(g.newNodes))))
		}
		b.insert(s, idRef(g.preds[g.r.IntN(len(g.preds))]), o)
	}
	// Remember what this transaction names, resolved, for later entries.
	base := idx << 20
	for k := uint32(1); k <= g.newNodes; k++ {
		g.nodes = append(g.nodes, base|uint64(k))
	}
	resolve := func(r *entrypb.NodeRef) uint64 {
		if id, ok := r.Ref.(*entrypb.NodeRef_Id); ok {
			return id.Id
		}
		return base | uint64(r.GetNewNode())
	}
	for i, ins := range b.tx.Inserts {
		o := ins.Object
		if n, ok := o.Value.(*entrypb.Object_Node); ok {
			o = nodeObj(resolve(n.Node))
		}
		g.triples = append(g.triples, &entrypb.Triple{Subject: resolve(ins.Subject), Predicate: resolve(ins.Predicate), Object: o})
		g.factIDs = append(g.factIDs, base|uint64(g.newNodes)+1+uint64(i))
	}
	g.factIDs = append(g.factIDs, (idx-1)<<20|999) // never exists
	if g.r.IntN(8) == 0 {
		b.held()
		g.pending = append(g.pending, idx)
	}
	return b.bytes()
}

// lookupsFor builds every kind of lookup the view's space serves.
func (g *gen) lookupsFor(t testing.TB, space Space, rng HashRange) [][]Lookup {
	var batches [][]Lookup
	inRange := func(space Space, s, p uint64, o *entrypb.Object) bool {
		tr := triple{s: s, p: p}
		if o != nil {
			tr.obj = encObj(t, o)
		}
		return rng.Contains(modelHash(space, tr))
	}
	if space == SpaceSP {
		var ls, lsp, lspo []Lookup
		for _, s := range g.nodes {
			ls = append(ls, Lookup{Kind: LookupS, Subject: s})
			for _, p := range g.preds {
				if inRange(SpaceSP, s, p, nil) {
					lsp = append(lsp, Lookup{Kind: LookupSP, Subject: s, Predicate: p})
				}
			}
		}
		for _, tr := range g.triples {
			if inRange(SpaceSP, tr.Subject, tr.Predicate, nil) && g.r.IntN(3) == 0 {
				lspo = append(lspo, Lookup{Kind: LookupSPO, Subject: tr.Subject, Predicate: tr.Predicate, Object: tr.Object})
			}
		}
		return append(batches, ls, lsp, lspo)
	}
	var lpo, lcmp []Lookup
	for _, tr := range g.triples {
		if inRange(SpacePO, 0, tr.Predicate, tr.Object) && g.r.IntN(3) == 0 {
			lpo = append(lpo, Lookup{Kind: LookupPO, Predicate: tr.Predicate, Object: tr.Object})
		}
	}
	for range 40 {
		p := g.preds[g.r.IntN(len(g.preds))]
		op := viewpb.CmpOp(1 + g.r.IntN(7))
		l := Lookup{Kind: LookupPOCmp, Predicate: p, Op: op, Object: g.object()}
		switch op {
		case viewpb.CmpOp_BETWEEN:
			hi := g.object()
			a, b := encObj(t, l.Object), encObj(t, hi)
			if a[0] != b[0] {
				hi = l.Object
			} else if a > b {
				l.Object, hi = hi, l.Object
			}
			l.Upper = hi
		case viewpb.CmpOp_PREFIX:
			l.Object = strObj([]string{"", "a", "ab", "a\x00", "b", "c"}[g.r.IntN(6)], "")
		}
		lcmp = append(lcmp, l)
	}
	return append(batches, lpo, lcmp)
}

func decodeForTest(enc string) (*entrypb.Object, error) {
	return model.DecodeObject([]byte(enc))
}

func TestModel(t *testing.T) {
	type viewCase struct {
		name  string
		space Space
		rng   HashRange
		batch int // MaxBatchOps
	}
	cases := []viewCase{
		{"sp-full", SpaceSP, FullRange, 100_000},
		{"po-full", SpacePO, FullRange, 100_000},
		{"sp-part", SpaceSP, HashRange{Start: 1 << 62, End: halfRange + 1<<61}, 5},
		{"po-part", SpacePO, HashRange{Start: halfRange}, 5},
	}
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			g := newGen(seed)
			m := newModel(t)
			log := NewMemLog()
			log.MaxBatch = 1 + int(seed*7)
			const entries = 600
			var checks []uint64
			for i := uint64(1); i <= entries; i++ {
				data := g.next()
				log.Append(data)
				m.apply(i, data)
				if g.r.IntN(25) == 0 {
					checks = append(checks, i)
				}
			}
			checks = append(checks, 0, entries)
			for _, c := range cases {
				cfg := testConfig(t, c.space, c.rng)
				cfg.MaxBatchOps = c.batch
				v := openView(t, cfg)
				// Apply in two runs with a restart in between.
				r := start(t, v, log)
				waitApplied(t, v, entries/2)
				r.stop()
				if err := v.Close(); err != nil {
					t.Fatal(err)
				}
				v = openView(t, cfg)
				start(t, v, log)
				waitApplied(t, v, entries)
				for _, idx := range checks {
					want := m.visible(idx, c.space, c.rng)
					if got, err := v.Digest(t.Context(), idx); err != nil || !got.Equal(modelDigest(want)) {
						slices.SortFunc(want, func(a, b factRow) int { return cmp.Compare(a.id, b.id) })
						t.Fatalf("%s: digest at %d = %v, %v; model %v\n view %v\nmodel %v", c.name, idx, got, err,
							modelDigest(want), allFacts(t, v, idx), want)
					}
					for _, batch := range g.lookupsFor(t, c.space, c.rng) {
						if len(batch) == 0 {
							continue
						}
						got, err := lookupRows(t, v, idx, batch)
						if err != nil {
							t.Fatalf("%s: %v at %d: %v", c.name, batch[0].Kind, idx, err)
						}
						want := m.answer(idx, c.space, c.rng, batch)
						if !slices.Equal(got, want) {
							t.Fatalf("%s: %v at index %d:\n got %v\nwant %v", c.name, batch[0].Kind, idx, got, want)
						}
					}
				}
			}
		})
	}
}
