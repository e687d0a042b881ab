package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/akutan/akutan/apisvc/facttext"
	"github.com/akutan/akutan/proto/apipb"
)

// writeResult is the JSON of insert and delete.
type writeResult struct {
	Operation string            `json:"operation"`
	Facts     int               `json:"facts"`
	Index     uint64            `json:"index"`
	Batches   int               `json:"batches"`
	Created   map[string]uint64 `json:"created"`
}

func (a *app) writeCmd(op string) *cobra.Command {
	verb := map[string]string{"insert": "insert", "delete": "delete"}[op]
	c := &cobra.Command{
		Use:   op + " [FILE|-]",
		Short: verb + " the facts in FILE (default stdin)",
		Long: verb + ` the facts in FILE (default stdin). The whole file is parsed first, so a
syntax error writes nothing. Each batch (--batch facts) is one transaction;
a file larger than one batch is not atomic as a whole.

A write goes to the next API server only if it was never sent; once it may
have reached a server, a failure is reported as "outcome unknown" (exit 1)
and not retried: look the facts up before writing them again.`,
		Args: argsBetween(0, 1),
	}
	batch := c.Flags().Int("batch", 10000, "facts per transaction")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if *batch <= 0 {
			return usageError("--batch must be positive")
		}
		return a.writeFacts(cmd.Context(), op, args, *batch)
	}
	return c
}

// writeFacts inserts or deletes the facts of a file, batch by batch.
func (a *app) writeFacts(ctx context.Context, op string, args []string, batch int) error {
	in, name := a.stdin, "stdin"
	if len(args) == 1 && args[0] != "-" {
		f, err := os.Open(args[0])
		if err != nil {
			return err
		}
		defer f.Close()
		in, name = io.Reader(f), args[0]
	}
	facts, err := facttext.Parse(in)
	if err != nil {
		return fmt.Errorf("%s: %w (nothing was written)", name, err)
	}
	if len(facts) == 0 {
		return fmt.Errorf("%s: no facts", name)
	}
	client, err := newAPIClient(a.api)
	if err != nil {
		return err
	}
	defer client.Close()
	var bar *progress
	if len(facts) > batch {
		bar = newProgress(a.progressOut(), "facts", true)
	}
	res := writeResult{Operation: op, Facts: len(facts), Created: map[string]uint64{}}
	for start := 0; start < len(facts); start += batch {
		end := min(start+batch, len(facts))
		req := &apipb.WriteRequest{}
		if op == "insert" {
			req.Inserts = facts[start:end]
		} else {
			req.Deletes = facts[start:end]
		}
		var resp *apipb.WriteResponse
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err := client.write(cctx, func(ctx context.Context, c apipb.AkutanClient) error {
			var err error
			resp, err = c.Write(ctx, req)
			return err
		})
		cancel()
		if err != nil {
			bar.done()
			return writeError(err, start, end, res.Index)
		}
		res.Index = resp.Index
		res.Batches++
		for n, id := range resp.Created {
			res.Created[n] = id
		}
		bar.set(int64(end), int64(len(facts)))
	}
	bar.done()
	if a.jsonOut {
		return a.printJSON(res)
	}
	verb := map[string]string{"insert": "inserted", "delete": "deleted"}[op]
	fmt.Fprintf(a.stdout, "%s %d facts at index %d\n", verb, len(facts), res.Index)
	return nil
}

// writeError says which facts failed, which were written before them, and,
// for an unknown outcome, that nothing was retried.
func writeError(err error, start, end int, last uint64) error {
	before := ""
	if start > 0 {
		before = fmt.Sprintf("; facts before %d were written, through index %d", start+1, last)
	}
	if errors.Is(err, errOutcomeUnknown) {
		return fmt.Errorf("%w (facts %d-%d may or may not have been committed; not retried: look them up before writing again%s)", err, start+1, end, before)
	}
	if start > 0 {
		return fmt.Errorf("facts %d-%d: %w (%s)", start+1, end, err, before[2:])
	}
	return err
}
