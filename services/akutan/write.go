package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/akutan/akutan/apisvc/facttext"
	"github.com/akutan/akutan/proto/apipb"
)

// writeFacts inserts or deletes the facts of a file. The whole file is
// parsed first, so a syntax error writes nothing. Each batch is one
// transaction; a file larger than one batch is not atomic as a whole.
func writeFacts(ctx context.Context, cmd string, args []string, out io.Writer) error {
	fs, addr := apiFlags(cmd, cmd+" [--batch N] [FILE|-]")
	batch := fs.Int("batch", 10000, "facts per transaction")
	quiet := fs.Bool("quiet", false, "no progress bar")
	pos, err := parseMixed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 || *batch <= 0 {
		fs.Usage()
		return fmt.Errorf("usage: akutan %s [--batch N] [FILE|-]", cmd)
	}
	in, name := io.Reader(os.Stdin), "stdin"
	if len(pos) == 1 && pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			return err
		}
		defer f.Close()
		in, name = f, pos[0]
	}
	facts, err := facttext.Parse(in)
	if err != nil {
		return fmt.Errorf("%s: %w (nothing was written)", name, err)
	}
	if len(facts) == 0 {
		return fmt.Errorf("%s: no facts", name)
	}
	client, closeFn, err := dialAPI(*addr)
	if err != nil {
		return err
	}
	defer closeFn()
	bar := newProgress(os.Stderr, "facts", int64(len(facts)), !*quiet && len(facts) > *batch)
	var last uint64
	for start := 0; start < len(facts); start += *batch {
		end := min(start+*batch, len(facts))
		req := &apipb.WriteRequest{}
		if cmd == "insert" {
			req.Inserts = facts[start:end]
		} else {
			req.Deletes = facts[start:end]
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		resp, err := client.Write(cctx, req)
		cancel()
		if err != nil {
			bar.done()
			if start > 0 {
				return fmt.Errorf("facts %d-%d: %w (facts before %d were written, through index %d)", start+1, end, err, start+1, last)
			}
			return err
		}
		last = resp.Index
		bar.add(int64(end - start))
	}
	bar.done()
	verb := map[string]string{"insert": "inserted", "delete": "deleted"}[cmd]
	fmt.Fprintf(out, "%s %d facts at index %d\n", verb, len(facts), last)
	return nil
}
