package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/akutan/akutan/infra/backup"
	"github.com/akutan/akutan/snapshot"
)

// defaultStore is the local stack's bucket (localstack/lib.sh).
const defaultStore = "s3://akutan/stack?endpoint=http://127.0.0.1:17900&region=us-east-1&path_style=true"

// storeFlag adds --store to fs.
func storeFlag(fs *flag.FlagSet) *string {
	return fs.String("store", defaultStore, "object store URL: a directory path, or s3://bucket/prefix?endpoint=URL&region=R&path_style=true\n(credentials from the standard AWS chain; the local stack's by default)")
}

// openStore opens the store at url. For the local stack's default bucket it
// supplies the local MinIO's credentials when none are set.
func openStore(ctx context.Context, url string) (snapshot.Store, error) {
	if url == defaultStore && os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		os.Setenv("AWS_ACCESS_KEY_ID", "akutan-local")
		os.Setenv("AWS_SECRET_ACCESS_KEY", "akutan-local-secret")
	}
	return snapshot.OpenStore(ctx, url)
}

func backupCmd(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: akutan backup init|list|verify|now|prune; see akutan --help")
	}
	switch args[0] {
	case "init":
		return backupInit(ctx, args[1:], out)
	case "list":
		return backupList(ctx, args[1:], out)
	case "verify":
		return backupVerify(ctx, args[1:], out)
	case "now":
		return backupNow(ctx, args[1:], out)
	case "prune":
		return backupPrune(ctx, args[1:], out)
	}
	return fmt.Errorf("unknown command \"backup %s\"; see akutan --help", args[0])
}

func backupFlags(name, synopsis string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	store := storeFlag(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: akutan %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs, store
}

// backupInit creates the bucket if it does not exist.
func backupInit(ctx context.Context, args []string, out io.Writer) error {
	fs, url := backupFlags("backup init", "backup init [--store URL]")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := openStore(ctx, *url)
	if err != nil {
		return err
	}
	if b, ok := s.(interface{ EnsureBucket(context.Context) error }); ok {
		if err := b.EnsureBucket(ctx); err != nil {
			return err
		}
	}
	// Create the catalogs and the marker, refusing a store that lost them.
	if _, err := snapshot.InitBucket(ctx, s, "akutan backup init"); err != nil {
		return err
	}
	fmt.Fprintln(out, "store ready:", *url)
	return nil
}

func backupList(ctx context.Context, args []string, out io.Writer) error {
	fs, url := backupFlags("backup list", "backup list [--store URL] [--json]")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := openStore(ctx, *url)
	if err != nil {
		return err
	}
	inv, _, _, err := backup.Load(ctx, s)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(inv)
	}
	if inv.Segments == 0 {
		fmt.Fprintln(out, "archive: empty")
	} else {
		fmt.Fprintf(out, "archive: indexes %d..%d in %d segments, %s (%s before compression, ratio %.2f)\n",
			inv.ArchiveFirst, inv.ArchivedThrough, inv.Segments, humanBytes(inv.ArchiveBytes), humanBytes(inv.ArchiveRawBytes),
			float64(inv.ArchiveRawBytes)/max(float64(inv.ArchiveBytes), 1))
	}
	fmt.Fprintf(out, "checkpoints: %d\n", len(inv.Checkpoints))
	if len(inv.Checkpoints) > 0 {
		w := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(w, "  CLUSTER\tSPACE\tRANGE\tINDEX\tSIZE\tCREATED")
		for _, c := range inv.Checkpoints {
			fmt.Fprintf(w, "  %s\t%s\t%s\t%d\t%s\t%s\n", orNone(c.Cluster), c.Space, c.Range(), c.Index,
				humanBytes(c.Bytes), c.Created.UTC().Format(time.RFC3339))
		}
		w.Flush()
	}
	if len(inv.Restorable) == 0 {
		fmt.Fprintln(out, "restorable: nothing yet (needs an archive from index 1, or checkpoints covering both spaces plus the archive after them)")
	}
	for _, r := range inv.Restorable {
		fmt.Fprintf(out, "restorable: indexes %d..%d\n", r.First, r.Last)
	}
	return nil
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func backupVerify(ctx context.Context, args []string, out io.Writer) error {
	fs, url := backupFlags("backup verify", "backup verify [--store URL] [--deep]")
	deep := fs.Bool("deep", false, "also restore the newest restorable index into a temporary dir and compare digests")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, err := openStore(ctx, *url)
	if err != nil {
		return err
	}
	bar := newByteProgress(os.Stderr, "verify")
	rep, err := snapshot.Verify(ctx, s, snapshot.VerifyOptions{Progress: bar.set})
	bar.done()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "checked %d segments, %d checkpoints with %d files, %s\n", rep.Segments, rep.Checkpoints, rep.Files, humanBytes(rep.Bytes))
	for _, p := range rep.Problems {
		fmt.Fprintf(out, "PROBLEM %s\n", p)
	}
	if !rep.OK() {
		fmt.Fprintf(out, "%d problems\n", len(rep.Problems))
		return exitError{3}
	}
	if *deep {
		return deepVerify(ctx, s, out)
	}
	fmt.Fprintln(out, "ok")
	return nil
}
