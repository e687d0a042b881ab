// Command akutan is the operator and user CLI of Akutan.
//
// It is built on cobra: nested command groups that each answer --help,
// bash and zsh completion, and pflag's list flags come with it. The
// precedence flag > AKUTAN_* environment > config-file context > default is
// applied by hand in resolve (a few dozen lines) rather than through viper,
// whose key merging does not know that --api and --log are lists and
// whose dependencies the CLI does not need. Failover between API servers
// lives in client.go, between log replicas in logsvc/logclient.Admin;
// "backup now" is infra/backup.Now.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc/status"

	"github.com/akutan/akutan/internal/buildinfo"
)

// The local stack's addresses (localstack/lib.sh): the three API servers
// and the three log replicas, dc1 first.
var (
	defaultAPI = []string{"127.0.0.1:17201", "127.0.0.1:17202", "127.0.0.1:17203"}
	defaultLog = []string{"127.0.0.1:17101", "127.0.0.1:17102", "127.0.0.1:17103"}
)

// defaultStore is the local stack's bucket (localstack/lib.sh).
const defaultStore = "s3://akutan/stack?endpoint=http://127.0.0.1:17900&region=us-east-1&path_style=true"

// Exit codes, as akutan --help documents them.
const (
	exitOK       = 0
	exitFailed   = 1
	exitUsage    = 2
	exitProblems = 3
)

const rootLong = `akutan is the command-line tool for Akutan: facts, cluster status, the log,
and backup and restore.

Fact syntax: one fact per line, <subject> <predicate> <object>; objects are
<name>, "text" (optionally "text"@lang), integers, floats, true/false, or
RFC 3339 timestamps; @123 names a node by ID; # starts a comment.

Addresses: --api and --log take lists (comma-separated or repeated) and
default to the local stack's three API servers and three log replicas. A
read, a status or an administrative call goes to the next address when one
cannot be reached or answers Unavailable. A write goes to the next address
only when it surely never left (the connection could not be made); once it
may have reached a server, a failure is reported as "outcome unknown" and
never retried, since the write may have been committed.

Configuration: every flag --name can also be set by the environment variable
AKUTAN_NAME (upper case, - as _), and --api, --log and --store by a context
of the config file ($XDG_CONFIG_HOME/akutan/config.yaml, or
~/.config/akutan/config.yaml; --config or AKUTAN_CONFIG names another). A
flag beats the environment, which beats the config file. The file holds
named contexts, like kubectl's:

  current-context: prod
  contexts:
    prod:
      api: [10.0.1.5:7201, 10.0.2.5:7201]
      log: [10.0.1.4:7101, 10.0.2.4:7101, 10.0.3.4:7101]
      store: s3://akutan-prod/db?region=eu-west-1

--context NAME (or AKUTAN_CONTEXT) picks one; "akutan context list" and
"akutan context use NAME" manage them.

Output: --json prints one JSON document per command (snake_case keys,
numbers as numbers; a command that keeps running, such as log tail --follow,
prints one document per line). Progress bars are drawn only when stderr is a
terminal; --quiet turns them off.

Exit codes:
  0  success
  1  error (including a write whose outcome is unknown)
  2  usage error: an unknown command, flag or argument
  3  done, but problems found: status when the cluster is not fully
     available, backup verify when verification found problems, log info
     when a replica is unhealthy`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	root := a.rootCmd()
	root.SetArgs(mixedArgs(root, args))
	err := root.ExecuteContext(ctx)
	return a.report(err)
}

// app is what every command shares: the streams, the environment and the
// resolved global settings.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	api, log    []string
	store       string
	configPath  string
	contextName string
	jsonOut     bool
	quiet       bool
	sources     map[string]string // flag name -> "flag", "env" or "config"
}

// exitError carries an exit code; err, if set, is printed.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return fmt.Sprintf("exit %d", e.code)
}

func (e exitError) Unwrap() error { return e.err }

// usageError is a usage mistake: exit code 2.
func usageError(format string, args ...any) error {
	return exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// problems means the command ran and found problems it has printed: exit
// code 3.
var problems = exitError{code: exitProblems}

// report prints err and returns the exit code for it.
func (a *app) report(err error) int {
	if err == nil {
		return exitOK
	}
	var ee exitError
	code := exitFailed
	if errors.As(err, &ee) {
		code, err = ee.code, ee.err
	} else if isCobraUsage(err) {
		code = exitUsage
	}
	if err == nil {
		return code
	}
	msg := err.Error()
	if st, ok := status.FromError(err); ok {
		msg = fmt.Sprintf("%s (%s)", st.Message(), st.Code())
	}
	fmt.Fprintln(a.stderr, "akutan:", msg)
	if code == exitUsage {
		fmt.Fprintln(a.stderr, `Run "akutan --help" or "akutan COMMAND --help" for usage.`)
	}
	return code
}

// isCobraUsage recognises cobra's own usage errors (unknown commands and
// bad arguments), which are plain errors.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires ", "invalid argument", "flag needs an argument", "required flag"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "akutan",
		Short:         "the command-line tool for Akutan",
		Long:          rootLong,
		Version:       buildinfo.Get().String(),
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(a.stderr)
			cmd.Help()
			return exitError{code: exitUsage}
		},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return a.resolve(cmd) },
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetVersionTemplate("akutan {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return exitError{code: exitUsage, err: err} })
	pf := root.PersistentFlags()
	pf.StringSlice("api", defaultAPI, "gRPC addresses of API servers, tried in order")
	pf.StringSlice("log", defaultLog, "gRPC addresses of log replicas, tried in order")
	pf.String("store", defaultStore, "object store URL: a directory path, or s3://bucket/prefix?endpoint=URL&region=R&path_style=true\n(credentials from the standard AWS chain; the local stack's by default)")
	pf.String("config", "", "config file (default $XDG_CONFIG_HOME/akutan/config.yaml or ~/.config/akutan/config.yaml)")
	pf.String("context", "", "the config file's context to use (default: its current-context)")
	pf.Bool("json", false, "print one JSON document (snake_case keys, numbers as numbers)")
	pf.BoolP("quiet", "q", false, "no progress bars")

	root.AddGroup(&cobra.Group{ID: "facts", Title: "Facts:"}, &cobra.Group{ID: "ops", Title: "Operations:"})
	for _, c := range []*cobra.Command{a.writeCmd("insert"), a.writeCmd("delete"), a.lookupCmd()} {
		c.GroupID = "facts"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{a.statusCmd(), a.logCmd(), a.backupCmd(), a.restoreCmd(), a.topologyCmd(), a.clusterCmd(), a.contextCmd(), a.versionCmd()} {
		c.GroupID = "ops"
		root.AddCommand(c)
	}
	root.SetHelpCommandGroupID("ops")
	root.SetCompletionCommandGroupID("ops")
	root.InitDefaultCompletionCmd()
	annotateEnv(root)
	return root
}

// group returns a command that only holds subcommands: run alone it prints
// its help and exits 2, like the root.
func (a *app) group(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(a.stderr)
			cmd.Help()
			return exitError{code: exitUsage}
		},
	}
	c.AddCommand(subs...)
	return c
}

// noArgs refuses positional arguments, naming an unknown subcommand.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		if cmd.HasSubCommands() {
			return usageError("unknown command %q for %q", args[0], cmd.CommandPath())
		}
		return usageError("%s takes no arguments", cmd.CommandPath())
	}
	return nil
}

// argsBetween accepts min..max positional arguments.
func argsBetween(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < min || len(args) > max {
			if min == max {
				return usageError("%s takes %d argument(s), got %d; usage: %s", cmd.CommandPath(), min, len(args), cmd.UseLine())
			}
			return usageError("%s takes %d to %d arguments, got %d; usage: %s", cmd.CommandPath(), min, max, len(args), cmd.UseLine())
		}
		return nil
	}
}

// envName is the environment variable of a flag.
func envName(flag string) string {
	return "AKUTAN_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// noEnv are flags the environment does not set: asking for help or the
// version is for the command line only.
var noEnv = map[string]bool{"help": true, "version": true}

// annotateEnv adds each flag's environment variable to its help.
func annotateEnv(c *cobra.Command) {
	add := func(f *pflag.Flag) {
		if !noEnv[f.Name] && !strings.Contains(f.Usage, "AKUTAN_") {
			f.Usage += " [$" + envName(f.Name) + "]"
		}
	}
	c.LocalNonPersistentFlags().VisitAll(add)
	c.PersistentFlags().VisitAll(add)
	c.Flags().VisitAll(add)
	for _, sub := range c.Commands() {
		annotateEnv(sub)
	}
}

// resolve applies the environment and the config file to the flags the
// command line left unset, in that order of precedence, and fills a's
// globals.
func (a *app) resolve(cmd *cobra.Command) error {
	fs := cmd.Flags()
	a.sources = map[string]string{}
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			a.sources[f.Name] = "flag"
			return
		}
		if noEnv[f.Name] {
			return
		}
		v, ok := lookupEnv(a.getenv, envName(f.Name))
		if !ok {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", envName(f.Name), v, err))
			return
		}
		a.sources[f.Name] = "env"
	})
	if len(errs) > 0 {
		return exitError{code: exitUsage, err: errors.Join(errs...)}
	}
	a.configPath, _ = fs.GetString("config")
	a.contextName, _ = fs.GetString("context")
	a.jsonOut, _ = fs.GetBool("json")
	a.quiet, _ = fs.GetBool("quiet")
	a.api, _ = fs.GetStringSlice("api")
	a.log, _ = fs.GetStringSlice("log")
	a.store, _ = fs.GetString("store")
	if cmd.Annotations["config"] == "none" {
		return nil // context commands read the file themselves
	}
	ctxCfg, name, err := a.currentContext()
	if err != nil {
		return err
	}
	if ctxCfg != nil {
		if a.sources["api"] == "" && len(ctxCfg.API) > 0 {
			a.api, a.sources["api"] = ctxCfg.API, "config:"+name
		}
		if a.sources["log"] == "" && len(ctxCfg.Log) > 0 {
			a.log, a.sources["log"] = ctxCfg.Log, "config:"+name
		}
		if a.sources["store"] == "" && ctxCfg.Store != "" {
			a.store, a.sources["store"] = ctxCfg.Store, "config:"+name
		}
	}
	a.api, a.log = cleanAddrs(a.api), cleanAddrs(a.log)
	return nil
}

// lookupEnv reads an environment variable through getenv; an empty value
// counts as unset.
func lookupEnv(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

func cleanAddrs(in []string) []string {
	var out []string
	for _, a := range in {
		for _, p := range strings.Split(a, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// mixedArgs lets lookup take values such as -5 as positional arguments:
// after its first positional argument, only "--name" arguments are flags
// (and a negative number never is one). It moves lookup's flags first and
// its positional arguments after a "--", which cobra then parses as meant.
func mixedArgs(root *cobra.Command, args []string) []string {
	cmd, _, err := root.Find(args)
	if err != nil || cmd.Name() != "lookup" {
		return args
	}
	at := -1
	for i, s := range args {
		if s == "lookup" {
			at = i
			break
		}
	}
	if at < 0 {
		return args
	}
	lookupFlag := func(name string) *pflag.Flag {
		if f := cmd.Flags().Lookup(name); f != nil {
			return f
		}
		if f := cmd.InheritedFlags().Lookup(name); f != nil {
			return f
		}
		if len(name) == 1 {
			if f := cmd.Flags().ShorthandLookup(name); f != nil {
				return f
			}
			return cmd.InheritedFlags().ShorthandLookup(name)
		}
		return nil
	}
	rest := args[at+1:]
	var flags, pos []string
	for i := 0; i < len(rest); i++ {
		s := rest[i]
		if s == "--" {
			pos = append(pos, rest[i+1:]...)
			break
		}
		isFlag := strings.HasPrefix(s, "--") || (len(pos) == 0 && strings.HasPrefix(s, "-") && len(s) > 1 && !isNumber(s))
		if !isFlag {
			pos = append(pos, s)
			continue
		}
		flags = append(flags, s)
		name := strings.TrimLeft(s, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := lookupFlag(name); f != nil && f.NoOptDefVal == "" && i+1 < len(rest) {
			flags = append(flags, rest[i+1])
			i++
		}
	}
	out := append(append([]string(nil), args[:at+1]...), flags...)
	return append(append(out, "--"), pos...)
}

func isNumber(s string) bool {
	s = strings.TrimPrefix(s, "-")
	return s != "" && (s[0] >= '0' && s[0] <= '9' || s[0] == '.')
}
