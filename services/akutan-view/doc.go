// Command akutan-view runs one DiskView: it applies the log for one hash
// range of one space into Pebble (viewsvc) and serves the View gRPC service
// (proto/viewpb) until SIGTERM or SIGINT. It reads the log through
// logsvc/logclient, which fails over between replicas. `akutan-view --help`
// explains every flag.
//
// It runs under internal/lifecycle like every server: flags, AKUTAN_*
// environment variables and --config, slog logs, --http-addr (/metrics,
// /healthz, /readyz), and gRPC health and reflection. Once listening it logs
// the event msg=serving with grpc=HOST:PORT (and http=, space=, range=,
// applied=), which tests use to find a port picked with --listen host:0. It
// is ready while SERVING within --max-lag entries of the log's last index.
// It exits 0 after a graceful shutdown, 1 when it cannot start and 2 on bad
// flags. A view that stops applying the log (an
// unsupported log version, a malformed entry) keeps serving what it applied
// and reports why in Status.
package main
