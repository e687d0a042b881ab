// Package lifecycle is the one way Akutan's servers (akutan-log,
// akutan-view, akutan-api) run: configuration, logs, the HTTP listener,
// readiness, and the gRPC server options. A main creates a Process, adds its
// own flags to Process.Flags, calls Parse, builds its service with
// Process.Logger, Process.Registry and Process.ServerOptions, registers the
// health service and reflection with RegisterGRPC, sets its readiness check
// with SetReady, and calls Start. docs/operating.md is the operator's view.
//
// # Configuration
//
// Every flag may come from three places; the first that sets it wins:
//
//  1. the command line (--max-lag 50);
//  2. the environment: AKUTAN_ and the flag name upper-cased with - as _
//     (AKUTAN_MAX_LAG=50);
//  3. the --config file (or AKUTAN_CONFIG): one "flag-name value" per line,
//     blank lines and lines starting with # ignored, " #" starts a comment
//     after a value; a bare "flag-name" sets a boolean flag true. Names are
//     the flag names, so --print-config's output is itself a config file.
//
// then the flag's default. --print-config prints the result (every flag,
// values of flags whose name contains secret, token, password or key as
// <redacted>) and exits 0; --version prints the version, commit and build
// date (internal/buildinfo), and on a second line the highest log entry
// version the build supports (Process.MaxLogVersion), and exits 0.
//
// Why github.com/peterbourgon/ff/v3: the servers already define their flags
// on a standard flag.FlagSet, and ff adds the environment and a config file
// to exactly that flag set in one call (ff.Parse), with precisely the
// precedence above built in (flag > env > file). It is small (no
// dependencies beyond the standard library for the plain format) and
// well-kept. koanf or viper would mean a second configuration model beside
// the flags (keys, unmarshalling into structs, pflag) for no gain here; the
// plain format needs no YAML library and maps one line to one flag.
//
// # Logs
//
// log/slog only: --log-format text|json, --log-level debug|info|warn|error,
// to stderr. Raft's hclog output goes into the same logger through
// hclogslog, an hclog.Logger over slog. Startup and shutdown are slog events
// too ("serving" carries the addresses).
//
// # HTTP listener
//
// --http-addr (off when empty) serves /metrics (Process.Registry: Go and
// process collectors, akutan_build_info{version,commit,role} = 1, the gRPC
// metrics, and the services' own), /healthz (200 while the process runs),
// /readyz (200 "ready" when the readiness check passes, else 503 and the
// reason as text), /debug/pprof/ only with --pprof, and whatever Handle
// mounts (akutan-api's status page at "/").
//
// # Readiness
//
// The service's check runs in a loop every ReadyInterval; its cached verdict
// answers /readyz and sets the gRPC health service (the whole server "" and
// each registered service by name): SERVING exactly when the check passes.
// A verdict older than two intervals (the process was stopped or starved)
// is not trusted: the next request evaluates the check itself.
//
// # gRPC
//
// ServerOptions: message limits and keepalive from rpcconf (the one
// documented place for them), and interceptors, outermost first: metrics
// (akutan_<role>_requests_total{method,code},
// akutan_<role>_request_duration_seconds{method}), request logging at debug
// level, and panic recovery, which logs the stack and answers INTERNAL while
// the process keeps serving. RegisterGRPC adds the standard health service
// and server reflection, so grpcurl works without the .proto files.
package lifecycle
