package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/akutan/akutan/infra/truncate"
)

// logTruncate implements "akutan log truncate": plan the log's truncation
// (infra/truncate) and discard the prefix, once or every --every.
func logTruncate(args []string) error {
	fs, addrs := newFlags("log truncate", "log truncate [--dry-run] [--every D] [--delay D] [--clusters dc1,dc2,dc3] [--store URL] [--log addrs]")
	def := truncate.DefaultConfig()
	dryRun := fs.Bool("dry-run", false, "print the plan and why, discard nothing")
	every := fs.Duration("every", 0, "keep running, planning and discarding at this interval (0: once)")
	delay := fs.Duration("delay", def.Delay, "count only checkpoints created at least this long ago")
	clusters := fs.String("clusters", strings.Join(def.Clusters, ","), "the critical clusters; every point of each must be checkpointed")
	storeURL := storeFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("log truncate takes no arguments")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	store, err := openStore(octx, *storeURL)
	cancel()
	if err != nil {
		return err
	}
	log := truncate.NewGRPCLog(splitAddrs(*addrs))
	defer log.Close()
	c := &truncate.Coordinator{
		Config: truncate.Config{Clusters: splitAddrs(*clusters), Delay: *delay},
		Store:  store,
		Log:    log,
	}
	if err := c.Config.Validate(); err != nil {
		return err
	}
	out := os.Stdout
	if *every <= 0 {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		p, err := c.Once(cctx, *dryRun)
		if p != nil {
			if *dryRun {
				fmt.Fprint(out, "dry run: nothing is discarded\n")
			}
			fmt.Fprint(out, p)
		}
		return err
	}
	if *dryRun {
		return fmt.Errorf("--dry-run plans once; it does not combine with --every")
	}
	first := true
	err = c.Run(ctx, *every, func(p *truncate.Plan, err error) {
		stamp := time.Now().UTC().Format(time.RFC3339)
		if err != nil {
			fmt.Fprintf(out, "%s: truncate: %v\n", stamp, err)
			return
		}
		if p.Done || first {
			fmt.Fprintf(out, "%s:\n%s", stamp, p)
		}
		first = false
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}
