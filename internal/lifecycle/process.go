package lifecycle

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/peterbourgon/ff/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"

	"github.com/akutan/akutan/internal/buildinfo"
)

// EnvPrefix starts every environment variable that sets a flag:
// --max-lag is AKUTAN_MAX_LAG.
const EnvPrefix = "AKUTAN"

// ErrExit is returned by Parse after --version or --print-config printed
// what was asked: the caller exits 0 without starting anything.
var ErrExit = errors.New("lifecycle: done, exit 0")

// Process is one server process's shared lifecycle: its flags, logger,
// metrics registry, HTTP listener, readiness and gRPC options.
type Process struct {
	// Name is the binary's name (akutan-log); Role its short role (log,
	// view, api), the <role> of its metric names.
	Name, Role string
	// Flags is the process's flag set: the caller adds its own flags before
	// Parse.
	Flags *flag.FlagSet
	// Logger is the process's logger; set by Parse from --log-format and
	// --log-level. Before Parse it writes text at info level.
	Logger *slog.Logger
	// Registry holds every metric of the process: Go and process
	// collectors, akutan_build_info, the gRPC metrics, and whatever the
	// services register; /metrics serves it.
	Registry *prometheus.Registry

	stdout, stderr io.Writer

	configFile  string
	httpAddr    string
	logFormat   string
	logLevel    string
	pprof       bool
	version     bool
	printConfig bool
	logVersion  uint32 // by MaxLogVersion, for --version

	ready *readiness
	rpc   *rpcMetrics

	mu       sync.Mutex
	handlers []handler
	unary    []grpc.UnaryServerInterceptor
	stream   []grpc.StreamServerInterceptor
	http     *httpServer
}

// New returns the lifecycle of the binary name in role, with the shared
// flags defined on a fresh flag set whose usage prints usage, then every
// flag.
func New(name, role, usage string) *Process {
	p := &Process{
		Name:     name,
		Role:     role,
		Flags:    flag.NewFlagSet(name, flag.ContinueOnError),
		stdout:   os.Stdout,
		stderr:   os.Stderr,
		Registry: prometheus.NewRegistry(),
	}
	p.Logger = slog.New(slog.NewTextHandler(p.stderr, nil)).With("proc", name)
	fs := p.Flags
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\nEvery flag may also be set by the environment variable %s_<FLAG> (upper case, - as _)\n"+
			"or by a line \"flag-name value\" in the --config file; a flag beats the environment,\n"+
			"which beats the file.\n", EnvPrefix)
	}
	fs.StringVar(&p.configFile, "config", "", "config file: one \"flag-name value\" per line, # starts a comment (see docs/operating.md)")
	fs.StringVar(&p.httpAddr, "http-addr", "", "host:port of the HTTP listener (/metrics, /healthz, /readyz, /debug/pprof/ with --pprof); off when empty")
	fs.StringVar(&p.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&p.logLevel, "log-level", "info", "least log level: debug, info, warn or error")
	fs.BoolVar(&p.pprof, "pprof", false, "serve Go's profiles on the HTTP listener under /debug/pprof/ (they reveal internals: keep the listener private)")
	fs.BoolVar(&p.version, "version", false, "print the version, commit and build date, and exit")
	fs.BoolVar(&p.printConfig, "print-config", false, "print the effective configuration (secrets redacted) and exit")

	p.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	bi := buildinfo.Get()
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "akutan_build_info",
		Help: "Always 1; the labels say which build runs: version, commit, role.",
	}, []string{"version", "commit", "role"})
	build.WithLabelValues(bi.Version, bi.Commit, role).Set(1)
	p.Registry.MustRegister(build)
	p.rpc = newRPCMetrics(role, p.Registry)
	p.ready = newReadiness(func() *slog.Logger { return p.Logger })
	return p
}

// Parse sets the flags from args, the environment and the --config file,
// in that order of precedence, and builds the logger. It returns ErrExit
// after printing what --version or --print-config asked for, and
// flag.ErrHelp after -h.
func (p *Process) Parse(args []string) error {
	err := ff.Parse(p.Flags, args,
		ff.WithEnvVarPrefix(EnvPrefix),
		ff.WithConfigFileFlag("config"),
		ff.WithConfigFileParser(ff.PlainParser),
	)
	if err != nil {
		return err
	}
	if p.Flags.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", p.Flags.Args())
	}
	if p.version {
		if p.logVersion > 0 {
			fmt.Fprint(p.stdout, buildinfo.Get().Banner(p.Name, p.logVersion))
		} else {
			fmt.Fprintf(p.stdout, "%s %s\n", p.Name, buildinfo.Get())
		}
		return ErrExit
	}
	if p.printConfig {
		p.PrintConfig(p.stdout)
		return ErrExit
	}
	logger, err := NewLogger(p.stderr, p.logFormat, p.logLevel)
	if err != nil {
		return err
	}
	p.Logger = logger.With("proc", p.Name)
	return nil
}

// MaxLogVersion is the highest log entry version this build of the server
// supports (buildinfo.LogVersion of the service's builtin one), the default
// of its --max-supported-version. --version prints it, so the control plane
// can tell whether a directory of binaries reads the log (akutan cluster
// upgrade); call it before Parse.
func (p *Process) MaxLogVersion(builtin uint32) uint32 {
	p.logVersion = buildinfo.LogVersion(builtin)
	return p.logVersion
}

// NewLogger returns an slog logger writing format ("text" or "json") to w
// at level and above (debug, info, warn, error).
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if level == "trace" { // accepted for the log replica's old flag
		level = "debug"
	}
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// Secret reports whether a flag's value is redacted by --print-config: its
// name contains secret, token, password or key.
func Secret(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"secret", "token", "password", "key"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// PrintConfig writes the effective configuration, every flag with its
// value in the config file's format, secrets as <redacted>.
func (p *Process) PrintConfig(w io.Writer) {
	fmt.Fprintf(w, "# %s %s: effective configuration (flag > %s_* environment > --config file > default)\n", p.Name, buildinfo.Get().Version, EnvPrefix)
	var names []string
	p.Flags.VisitAll(func(f *flag.Flag) {
		switch f.Name {
		case "version", "print-config":
			return
		}
		names = append(names, f.Name)
	})
	sort.Strings(names)
	for _, n := range names {
		v := p.Flags.Lookup(n).Value.String()
		switch {
		case Secret(n):
			v = "<redacted>"
		case v == "":
			fmt.Fprintf(w, "# %s (empty)\n", n)
			continue
		}
		fmt.Fprintf(w, "%s %s\n", n, v)
	}
}

// HTTPAddr is the --http-addr flag, or once the listener runs, the address
// it listens on.
func (p *Process) HTTPAddr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.http != nil {
		return p.http.addr()
	}
	return p.httpAddr
}
