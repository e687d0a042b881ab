package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/akutan/akutan/infra/restore"
	"github.com/akutan/akutan/logsvc"
	"github.com/akutan/akutan/snapshot"
	"github.com/akutan/akutan/viewsvc"
)

// viewSpecs collects repeated --view flags.
type viewSpecs []restore.ViewSpec

func (v *viewSpecs) String() string { return fmt.Sprint(len(*v), " views") }

// Set parses NAME:SPACE:START:END:DIR, START and END as for akutan-view
// (decimal, 0x hex, END "max" for 2^64).
func (v *viewSpecs) Set(s string) error {
	parts := strings.SplitN(s, ":", 5)
	if len(parts) != 5 {
		return fmt.Errorf("--view %q: want NAME:SPACE:START:END:DIR", s)
	}
	space, err := viewsvc.ParseSpace(parts[1])
	if err != nil {
		return fmt.Errorf("--view %q: %w", s, err)
	}
	start, _, err := viewsvc.ParseHashBound(parts[2])
	if err != nil {
		return fmt.Errorf("--view %q: start: %w", s, err)
	}
	end, isMax, err := viewsvc.ParseHashBound(parts[3])
	if err != nil {
		return fmt.Errorf("--view %q: end: %w", s, err)
	}
	if isMax {
		end = 0
	}
	r := viewsvc.HashRange{Start: start, End: end}
	if err := r.Validate(); err != nil {
		return fmt.Errorf("--view %q: %w", s, err)
	}
	*v = append(*v, restore.ViewSpec{Name: parts[0], Space: space, Range: r, Dir: parts[4]})
	return nil
}

func restoreCmd(ctx context.Context, args []string, out io.Writer) error {
	fs, src := backupFlags("restore", "restore (--to-index N | --latest) --target-store URL --log-dir DIR --log-id ID --log-raft-addr ADDR --view NAME:SPACE:START:END:DIR ... [--store URL]")
	toIndex := fs.Uint64("to-index", 0, "restore at exactly this log index")
	latest := fs.Bool("latest", false, "restore at the newest archived index")
	target := fs.String("target-store", "", "store URL of the new timeline (an empty prefix); the restored cluster archives and checkpoints there (required)")
	logDir := fs.String("log-dir", "", "data dir of the restored log replica (empty or absent) (required)")
	logID := fs.String("log-id", "", "Raft server ID of the restored log replica (required)")
	raftAddr := fs.String("log-raft-addr", "", "Raft address of the restored log replica (required)")
	var views viewSpecs
	fs.Var(&views, "view", "a view of the new cluster, NAME:SPACE:START:END:DIR (repeat for each view)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var missing []string
	for name, v := range map[string]string{"--target-store": *target, "--log-dir": *logDir, "--log-id": *logID, "--log-raft-addr": *raftAddr} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("restore: %s required", strings.Join(missing, ", "))
	}
	if *latest == (*toIndex != 0) {
		return fmt.Errorf("restore: give exactly one of --to-index N and --latest")
	}
	if *target == *src {
		return fmt.Errorf("restore: --target-store must be a new prefix, not the source (--store)")
	}
	source, err := openStore(ctx, *src)
	if err != nil {
		return err
	}
	dst, err := openStore(ctx, *target)
	if err != nil {
		return err
	}
	bars := map[string]*byteProgress{}
	n, err := restore.Run(ctx, restore.Options{
		Source: source,
		Target: dst,
		Index:  *toIndex,
		LogDir: *logDir,
		Log:    logsvc.RestoreConfig{ID: *logID, RaftAddr: *raftAddr},
		Views:  views,
		Progress: func(step string, done, total int64) {
			b := bars[step]
			if b == nil {
				b = newByteProgress(os.Stderr, step)
				if step == "restore views" || step == "check log" {
					b.count = true
				}
				bars[step] = b
			}
			b.set(done, total)
			if done >= total {
				b.done()
			}
		},
		Logf: func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) },
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "restored at index %d: log replica %s in %s, %d views; the new timeline is %s\n", n, *logID, *logDir, len(views), *target)
	return nil
}

// deepVerify restores both spaces at the newest archived index into a
// temporary dir and compares their digests.
func deepVerify(ctx context.Context, s snapshot.Store, out io.Writer) error {
	dir, err := os.MkdirTemp("", "akutan-verify-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	res, err := restore.VerifyDeep(ctx, s, 0, dir)
	if err != nil {
		return fmt.Errorf("deep verify: %w", err)
	}
	fmt.Fprintf(out, "deep: restored both spaces at index %d: HashSP %v, HashPO %v\n", res.Index, res.SP, res.PO)
	if !res.OK() {
		fmt.Fprintln(out, "PROBLEM the two spaces restore to different facts")
		return exitError{3}
	}
	fmt.Fprintln(out, "ok")
	return nil
}
