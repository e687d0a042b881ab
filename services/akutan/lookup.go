package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/akutan/akutan/apisvc/facttext"
	"github.com/akutan/akutan/proto/apipb"
)

var cmpOps = map[string]apipb.CmpOp{
	"=": apipb.CmpOp_EQ, "<": apipb.CmpOp_LT, "<=": apipb.CmpOp_LE, ">": apipb.CmpOp_GT, ">=": apipb.CmpOp_GE,
	"between": apipb.CmpOp_BETWEEN, "prefix": apipb.CmpOp_PREFIX,
}

const lookupSynopsis = `lookup [--index N | --at-least N | --recent | --latest] [--json] S [P [O]]
       akutan lookup [flags] _ P O
       akutan lookup [flags] _ P OP VALUE [UPPER]     (OP: = < <= > >= between prefix)`

func lookup(ctx context.Context, args []string, out io.Writer) error {
	fs, addr := apiFlags("lookup", lookupSynopsis)
	exact := fs.Uint64("index", 0, "read at exactly this log index")
	atLeast := fs.Uint64("at-least", 0, "read at this index or a later one")
	recent := fs.Bool("recent", false, "read at a recent index the views have (may be slightly stale)")
	latest := fs.Bool("latest", false, "read at the log's committed end, confirmed by the leader (the default)")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseMixed(fs, args)
	if err != nil {
		return err
	}
	set := 0
	for _, b := range []bool{*exact > 0, *atLeast > 0, *recent, *latest} {
		if b {
			set++
		}
	}
	if set > 1 {
		return fmt.Errorf("give at most one of --index, --at-least, --recent, --latest")
	}
	ic := &apipb.IndexConstraint{Kind: &apipb.IndexConstraint_Latest{Latest: true}}
	switch {
	case *exact > 0:
		ic.Kind = &apipb.IndexConstraint_Exact{Exact: *exact}
	case *atLeast > 0:
		ic.Kind = &apipb.IndexConstraint_AtLeast{AtLeast: *atLeast}
	case *recent:
		ic.Kind = &apipb.IndexConstraint_Recent{Recent: true}
	}
	call, err := lookupCall(pos, ic)
	if err != nil {
		fs.Usage()
		return err
	}
	client, closeFn, err := dialAPI(*addr)
	if err != nil {
		return err
	}
	defer closeFn()
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	resp, err := call(cctx, client)
	if err != nil {
		return err
	}
	if *asJSON {
		type jsonFact struct {
			ID        uint64 `json:"id"`
			Subject   string `json:"subject"`
			Predicate string `json:"predicate"`
			Object    string `json:"object"`
			Since     uint64 `json:"since_index"`
		}
		res := struct {
			Index uint64     `json:"index"`
			Facts []jsonFact `json:"facts"`
		}{Index: resp.Index, Facts: []jsonFact{}}
		for _, f := range resp.Facts {
			res.Facts = append(res.Facts, jsonFact{f.Id, facttext.FormatNode(f.Subject), facttext.FormatNode(f.Predicate), facttext.FormatObject(f.Object), f.Index})
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(res)
	}
	for _, f := range resp.Facts {
		fmt.Fprintln(out, facttext.FormatFact(f))
	}
	fmt.Fprintf(out, "# %d facts at index %d\n", len(resp.Facts), resp.Index)
	return nil
}

type lookupFn func(context.Context, apipb.AkutanClient) (*apipb.LookupResponse, error)

// lookupCall turns the positional arguments into one lookup RPC.
func lookupCall(args []string, ic *apipb.IndexConstraint) (lookupFn, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("lookup needs a subject, or _ and a predicate")
	}
	terms := make([]facttext.Term, len(args))
	for i, a := range args {
		if i == 0 && a == "_" {
			continue
		}
		if i == 2 && args[0] == "_" {
			if _, isOp := cmpOps[strings.ToLower(a)]; isOp && len(args) > 3 {
				continue
			}
		}
		t, err := facttext.ParseTerm(a)
		if err != nil {
			return nil, fmt.Errorf("argument %d (%s): %w", i+1, a, err)
		}
		terms[i] = t
	}
	node := func(i int, what string) (*apipb.Node, error) { return terms[i].Node(what) }
	if args[0] == "_" {
		if len(args) < 3 {
			return nil, fmt.Errorf("lookup _ needs a predicate and an object")
		}
		pred, err := node(1, "predicate")
		if err != nil {
			return nil, err
		}
		if len(args) == 3 {
			req := &apipb.LookupPORequest{Index: ic, Lookups: []*apipb.PO{{Predicate: pred, Object: terms[2].Object()}}}
			return func(ctx context.Context, c apipb.AkutanClient) (*apipb.LookupResponse, error) {
				return c.LookupPO(ctx, req)
			}, nil
		}
		op, ok := cmpOps[strings.ToLower(args[2])]
		if !ok {
			return nil, fmt.Errorf("unknown comparison %q; use = < <= > >= between prefix", args[2])
		}
		want := 4
		if op == apipb.CmpOp_BETWEEN {
			want = 5
		}
		if len(args) != want {
			return nil, fmt.Errorf("%s takes %d value(s)", args[2], want-3)
		}
		l := &apipb.POCmp{Predicate: pred, Op: op, Object: terms[3].Object()}
		if op == apipb.CmpOp_BETWEEN {
			l.Upper = terms[4].Object()
		}
		req := &apipb.LookupPOCmpRequest{Index: ic, Lookups: []*apipb.POCmp{l}}
		return func(ctx context.Context, c apipb.AkutanClient) (*apipb.LookupResponse, error) {
			return c.LookupPOCmp(ctx, req)
		}, nil
	}
	sub, err := node(0, "subject")
	if err != nil {
		return nil, err
	}
	switch len(args) {
	case 1:
		req := &apipb.LookupSRequest{Index: ic, Subjects: []*apipb.Node{sub}}
		return func(ctx context.Context, c apipb.AkutanClient) (*apipb.LookupResponse, error) {
			return c.LookupS(ctx, req)
		}, nil
	case 2, 3:
		pred, err := node(1, "predicate")
		if err != nil {
			return nil, err
		}
		if len(args) == 2 {
			req := &apipb.LookupSPRequest{Index: ic, Lookups: []*apipb.SP{{Subject: sub, Predicate: pred}}}
			return func(ctx context.Context, c apipb.AkutanClient) (*apipb.LookupResponse, error) {
				return c.LookupSP(ctx, req)
			}, nil
		}
		req := &apipb.LookupSPORequest{Index: ic, Lookups: []*apipb.Fact{{Subject: sub, Predicate: pred, Object: terms[2].Object()}}}
		return func(ctx context.Context, c apipb.AkutanClient) (*apipb.LookupResponse, error) {
			return c.LookupSPO(ctx, req)
		}, nil
	}
	return nil, fmt.Errorf("too many arguments")
}
