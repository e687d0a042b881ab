package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/akutan/akutan/apisvc/apiclient"
	"github.com/akutan/akutan/apisvc/facttext"
	"github.com/akutan/akutan/proto/apipb"
)

var cmpOps = map[string]apipb.CmpOp{
	"=": apipb.CmpOp_EQ, "<": apipb.CmpOp_LT, "<=": apipb.CmpOp_LE, ">": apipb.CmpOp_GT, ">=": apipb.CmpOp_GE,
	"between": apipb.CmpOp_BETWEEN, "prefix": apipb.CmpOp_PREFIX,
}

func (a *app) lookupCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "lookup S [P [O]] | _ P O | _ P OP VALUE [UPPER]",
		Short: "facts by subject, subject+predicate, all three, or predicate and object",
		Long: `lookup prints the facts that match, at one log index.

  akutan lookup S [P [O]]               by subject, subject+predicate, or all three
  akutan lookup _ P O                   by predicate and object
  akutan lookup _ P OP VALUE [UPPER]    OP is = < <= > >= between prefix

Flags may come before or after the terms; after the first term only
--name arguments are flags, so values such as -5 stay terms.
The answer comes in pages, all read at the first page's index, and is
printed as it comes. The read goes to the next API server when one is
unavailable.`,
		Example: `  akutan lookup '<alice>' '<knows>'
  akutan lookup _ '<age>' '>=' 30
  akutan lookup _ '<name>' prefix '"Ca"' --index 1 --json
  akutan lookup '<wd:Q5>' --limit 100`,
		Args: argsBetween(1, 5),
	}
	f := c.Flags()
	exact := f.Uint64("index", 0, "read at exactly this log index")
	atLeast := f.Uint64("at-least", 0, "read at this index or a later one")
	recent := f.Bool("recent", false, "read at a recent index the views have (may be slightly stale)")
	latest := f.Bool("latest", false, "read at the log's committed end, confirmed by the leader (the default)")
	limit := f.Int("limit", 0, "print at most this many facts (0: all)")
	pageSize := f.Uint32("page-size", 0, "facts per page the server sends (0: the server's default)")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		set := 0
		for _, b := range []bool{*exact > 0, *atLeast > 0, *recent, *latest} {
			if b {
				set++
			}
		}
		if set > 1 {
			return usageError("give at most one of --index, --at-least, --recent, --latest")
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
		call, err := lookupCall(args, ic)
		if err != nil {
			return exitError{code: exitUsage, err: err}
		}
		if *limit < 0 {
			return usageError("--limit must not be negative")
		}
		return a.lookup(cmd.Context(), call, *limit, *pageSize)
	}
	return c
}

// lookupResult is the JSON of lookup.
type lookupResult struct {
	Index uint64       `json:"index"`
	Facts []lookupFact `json:"facts"`
	// More says --limit cut the answer short.
	More bool `json:"more"`
}

type lookupFact struct {
	ID        uint64 `json:"id"`
	Subject   string `json:"subject"`
	Predicate string `json:"predicate"`
	Object    string `json:"object"`
	Since     uint64 `json:"since_index"`
}

// lookup reads the answer page by page, each page from whichever API
// server answers, and prints it as it comes (JSON once, at the end).
func (a *app) lookup(ctx context.Context, call lookupFn, limit int, pageSize uint32) error {
	client, err := newAPIClient(a.api)
	if err != nil {
		return err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	res := lookupResult{Facts: []lookupFact{}}
	printed, token := 0, ""
	for {
		size := pageSize
		if left := limit - printed; limit > 0 && (size == 0 || int(size) > left) {
			size = uint32(left)
		}
		var page *apipb.LookupResponse
		err = client.read(ctx, 0, func(ctx context.Context, c apipb.AkutanClient) error {
			var err error
			page, err = apiclient.ReadPage(call(ctx, c, token, size))
			return err
		})
		if err != nil {
			return err
		}
		res.Index = page.Index
		for _, f := range page.Facts {
			if limit > 0 && printed == limit {
				break
			}
			printed++
			if a.jsonOut {
				res.Facts = append(res.Facts, lookupFact{f.Id, facttext.FormatNode(f.Subject), facttext.FormatNode(f.Predicate), facttext.FormatObject(f.Object), f.Index})
			} else {
				fmt.Fprintln(a.stdout, facttext.FormatFact(f))
			}
		}
		token = page.NextPageToken
		if token == "" || (limit > 0 && printed == limit) {
			break
		}
	}
	if a.jsonOut {
		res.More = token != ""
		return a.printJSON(res)
	}
	more := ""
	if token != "" {
		more = " (more follow; raise --limit)"
	}
	fmt.Fprintf(a.stdout, "# %d facts at index %d%s\n", printed, res.Index, more)
	return nil
}

// lookupFn opens one page of a lookup: the one a token names, or the first.
type lookupFn func(ctx context.Context, c apipb.AkutanClient, token string, limit uint32) (apiclient.Stream, error)

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
			return func(ctx context.Context, c apipb.AkutanClient, token string, limit uint32) (apiclient.Stream, error) {
				req.PageToken, req.Limit = token, limit
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
		return func(ctx context.Context, c apipb.AkutanClient, token string, limit uint32) (apiclient.Stream, error) {
			req.PageToken, req.Limit = token, limit
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
		return func(ctx context.Context, c apipb.AkutanClient, token string, limit uint32) (apiclient.Stream, error) {
			req.PageToken, req.Limit = token, limit
			return c.LookupS(ctx, req)
		}, nil
	case 2, 3:
		pred, err := node(1, "predicate")
		if err != nil {
			return nil, err
		}
		if len(args) == 2 {
			req := &apipb.LookupSPRequest{Index: ic, Lookups: []*apipb.SP{{Subject: sub, Predicate: pred}}}
			return func(ctx context.Context, c apipb.AkutanClient, token string, limit uint32) (apiclient.Stream, error) {
				req.PageToken, req.Limit = token, limit
				return c.LookupSP(ctx, req)
			}, nil
		}
		req := &apipb.LookupSPORequest{Index: ic, Lookups: []*apipb.Fact{{Subject: sub, Predicate: pred, Object: terms[2].Object()}}}
		return func(ctx context.Context, c apipb.AkutanClient, token string, limit uint32) (apiclient.Stream, error) {
			req.PageToken, req.Limit = token, limit
			return c.LookupSPO(ctx, req)
		}, nil
	}
	return nil, fmt.Errorf("too many arguments")
}
