// Command akutan is the operator and user CLI of Akutan.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/logsvc/logclient"
	"github.com/akutan/akutan/logsvc/logerr"
	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/proto/logpb"
)

// The local stack's addresses (localstack/): dc1's API server and the log
// replicas.
const (
	defaultAPI = "127.0.0.1:17201"
	defaultLog = "127.0.0.1:17101,127.0.0.1:17102,127.0.0.1:17103"
)

const usage = `akutan is the command-line tool for Akutan.

Usage:
  akutan insert [FILE|-]                         insert the facts in FILE (default stdin)
  akutan delete [FILE|-]                         delete the facts in FILE (default stdin)
  akutan lookup S [P [O]]                        facts by subject, subject+predicate, or all three
  akutan lookup _ P O                            facts by predicate and object
  akutan lookup _ P OP VALUE [UPPER]             OP is = < <= > >= between prefix
  akutan status [--json]                         cluster status; exit code 1 unless fully available
  akutan log info [--linearizable] [--json]      describe the log and its replicas;
                                                 exit code 3 if a replica is unhealthy
  akutan log tail [--from N] [--follow]          print log entries (below the log's first
                                                 index, from the archive)
  akutan log add-voter ID RAFT-ADDR GRPC-ADDR    add a replica to the Raft cluster
  akutan log remove ID                           remove a replica from the Raft cluster
  akutan log transfer-leader [ID]                hand leadership to ID (or any voter)
  akutan log truncate [--dry-run] [--every D]    discard the log prefix that the archive and
                                                 checkpoints make unnecessary; says why
  akutan backup init                             create the bucket if needed
  akutan backup list [--json]                    checkpoints, archive coverage, restorable indexes
  akutan backup verify [--deep]                  check every checksum; --deep also restores both
                                                 spaces into a temporary dir and compares digests
  akutan backup now                              checkpoint every view and flush the log archive
  akutan backup prune [--keep K] [--every D]     retention: keep K checkpoints per range and the
                                                 archive they need; delete torn uploads after --grace
  akutan restore --to-index N | --latest ...     build a new cluster's log and views at exactly N
                                                 from the bucket (see akutan restore --help)

Fact syntax: one fact per line, <subject> <predicate> <object>; objects are
<name>, "text" (optionally "text"@lang), integers, floats, true/false, or
RFC 3339 timestamps; @123 names a node by ID; # starts a comment.

Fact and status commands take --api host:port (default: the local stack,
%s); log commands take --log host:port,... (default %s);
backup and restore commands take --store URL (default: the local stack's
bucket).
Run "akutan COMMAND --help" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		var ee exitError
		if !errors.Is(err, flag.ErrHelp) && !errors.As(err, &ee) {
			if st, ok := status.FromError(err); ok {
				fmt.Fprintf(os.Stderr, "akutan: %s (%s)\n", st.Message(), st.Code())
			} else {
				fmt.Fprintln(os.Stderr, "akutan:", err)
			}
		}
		os.Exit(exitCode(err))
	}
}

type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func exitCode(err error) int {
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 1
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(out, usage, defaultAPI, defaultLog)
		if len(args) == 0 {
			return exitError{2}
		}
		return nil
	}
	switch args[0] {
	case "insert", "delete":
		return writeFacts(ctx, args[0], args[1:], out)
	case "lookup":
		return lookup(ctx, args[1:], out)
	case "status":
		return statusCmd(ctx, args[1:], out)
	case "backup":
		return backupCmd(ctx, args[1:], out)
	case "restore":
		return restoreCmd(ctx, args[1:], out)
	}
	if args[0] != "log" || len(args) < 2 {
		fmt.Fprintf(os.Stderr, usage, defaultAPI, defaultLog)
		return fmt.Errorf("unknown command %q", strings.Join(args, " "))
	}
	switch args[1] {
	case "info":
		return logInfo(ctx, args[2:], out)
	case "tail":
		return logTail(ctx, args[2:], out)
	case "add-voter", "remove", "transfer-leader":
		return logMembership(ctx, args[1], args[2:], out)
	case "truncate":
		return logTruncate(args[2:])
	}
	return fmt.Errorf("unknown command \"log %s\"; see akutan --help", args[1])
}

func newFlags(name, synopsis string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	addrs := fs.String("log", defaultLog, "comma-separated gRPC addresses of log replicas")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: akutan %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs, addrs
}

func splitAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// anyReplica runs call against each replica in turn until one answers.
func anyReplica[T any](ctx context.Context, addrs []string, call func(context.Context, logpb.LogClient) (T, error)) (T, error) {
	var zero T
	var errs []error
	for _, addr := range addrs {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		v, err := call(cctx, logpb.NewLogClient(cc))
		cancel()
		cc.Close()
		if err == nil {
			return v, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, logerr.FromStatus(err)))
	}
	return zero, errors.Join(errs...)
}

func logInfo(ctx context.Context, args []string, out io.Writer) error {
	fs, addrs := newFlags("log info", "log info [--linearizable] [--json]")
	lin := fs.Bool("linearizable", false, "have the leader confirm its leadership and commit index")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	in, err := anyReplica(ctx, splitAddrs(*addrs), func(ctx context.Context, c logpb.LogClient) (*logpb.InfoResponse, error) {
		return c.Info(ctx, &logpb.InfoRequest{Linearizable: *lin})
	})
	if err != nil {
		return err
	}
	if *asJSON {
		b, err := protojson.MarshalOptions{Multiline: true, EmitUnpopulated: true}.Marshal(in)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, string(b))
		return membersHealthy(in)
	}
	fmt.Fprintf(out, "log: first index %d, last index %d, archived through %d, version %d\n", in.FirstIndex, in.LastIndex, in.ArchivedThrough, in.LogVersion)
	fmt.Fprintf(out, "leader: %s (%s), term %d; answered by %s\n", orNone(in.LeaderId), orNone(in.LeaderAddress), in.Term, in.NodeId)
	w := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "MEMBER\tROLE\tRAFT\tGRPC\tAPPLIED\tSUPPORTS\tSTATUS")
	for _, m := range in.Members {
		role := "voter"
		if !m.Voter {
			role = "nonvoter"
		}
		if m.Id == in.LeaderId {
			role = "leader"
		}
		st := "ok"
		if m.Error != "" {
			st = m.Error
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", m.Id, role, m.RaftAddress, orNone(m.GrpcAddress), m.AppliedIndex, m.MaxSupportedVersion, st)
	}
	w.Flush()
	if in.Error != "" {
		return fmt.Errorf("replica %s: %s", in.NodeId, in.Error)
	}
	return membersHealthy(in)
}

// membersHealthy fails with exit code 3 when a member is unreachable,
// unregistered or stopped, so scripts can wait for a healthy log.
func membersHealthy(in *logpb.InfoResponse) error {
	for _, m := range in.Members {
		if m.Error != "" {
			return exitError{3}
		}
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func logTail(ctx context.Context, args []string, out io.Writer) error {
	fs, addrs := newFlags("log tail", "log tail [--from N] [--follow]")
	from := fs.Uint64("from", 1, "first index to print")
	follow := fs.Bool("follow", false, "keep printing new entries as they commit")
	store := fs.String("store", defaultStore, "the log archive, read for entries the log has discarded (\"\" for none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	list := splitAddrs(*addrs)
	var last uint64
	if !*follow {
		in, err := anyReplica(ctx, list, func(ctx context.Context, c logpb.LogClient) (*logpb.InfoResponse, error) {
			return c.Info(ctx, &logpb.InfoRequest{Linearizable: true, LocalOnly: true})
		})
		if err != nil {
			return err
		}
		last = in.LastIndex
		if last < *from {
			return nil
		}
	}
	r := logclient.NewReader(list)
	defer r.Close()
	if *store != "" {
		archive, err := openStore(ctx, *store)
		if err != nil {
			return err
		}
		r.UseArchive(archive)
	}
	done := errors.New("done")
	err := r.Stream(ctx, *from, func(es []logclient.Entry) error {
		for _, e := range es {
			fmt.Fprintf(out, "%d\t%s\n", e.Index, describe(e.Data))
			if !*follow && e.Index >= last {
				return done
			}
		}
		return nil
	})
	if errors.Is(err, done) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// describe summarizes one entry for people.
func describe(data []byte) string {
	var env entrypb.Envelope
	if err := proto.Unmarshal(data, &env); err != nil {
		return fmt.Sprintf("undecodable entry (%d bytes): %v", len(data), err)
	}
	switch c := env.Command.(type) {
	case *entrypb.Envelope_Transaction:
		return fmt.Sprintf("v%d transaction: %d inserts, %d deletes, %d new nodes", env.Version, len(c.Transaction.Inserts), len(c.Transaction.Deletes), c.Transaction.NewNodes)
	case *entrypb.Envelope_Decision:
		return fmt.Sprintf("v%d decision: commit=%v for %d", env.Version, c.Decision.Commit, c.Decision.TxIndex)
	case *entrypb.Envelope_VersionChange:
		return fmt.Sprintf("v%d version change to %d", env.Version, c.VersionChange.ToVersion)
	case *entrypb.Envelope_Ping:
		return fmt.Sprintf("v%d ping %q", env.Version, c.Ping.Nonce)
	}
	b, _ := json.Marshal(data)
	return "unknown command " + string(b)
}

func logMembership(ctx context.Context, cmd string, args []string, out io.Writer) error {
	synopsis := map[string]string{
		"add-voter":       "log add-voter ID RAFT-ADDR GRPC-ADDR",
		"remove":          "log remove ID",
		"transfer-leader": "log transfer-leader [ID]",
	}[cmd]
	fs, addrs := newFlags("log "+cmd, synopsis)
	if err := fs.Parse(args); err != nil {
		return err
	}
	a := fs.Args()
	want := map[string][2]int{"add-voter": {3, 3}, "remove": {1, 1}, "transfer-leader": {0, 1}}[cmd]
	if len(a) < want[0] || len(a) > want[1] {
		fs.Usage()
		return fmt.Errorf("usage: akutan %s", synopsis)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := anyReplica(ctx, splitAddrs(*addrs), func(ctx context.Context, c logpb.LogClient) (*logpb.MembershipResponse, error) {
		switch cmd {
		case "add-voter":
			return c.AddVoter(ctx, &logpb.AddVoterRequest{Id: a[0], RaftAddress: a[1], GrpcAddress: a[2]})
		case "remove":
			return c.RemoveServer(ctx, &logpb.RemoveServerRequest{Id: a[0]})
		}
		id := ""
		if len(a) == 1 {
			id = a[0]
		}
		return c.TransferLeadership(ctx, &logpb.TransferLeadershipRequest{Id: id})
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "done; leader is %s\n", orNone(resp.LeaderId))
	return nil
}
