// Command akutan-view runs one DiskView: it applies the log for one hash
// range of one space into Pebble (viewsvc) and serves the View gRPC service
// (proto/viewpb) until SIGTERM or SIGINT. It reads the log through
// logsvc/logclient, which fails over between replicas. `akutan-view --help`
// explains every flag.
//
// Once listening it prints "akutan-view: serving SPACE RANGE on HOST:PORT
// (applied through N)" to stderr, which scripts and tests use to find a port
// picked with --listen host:0. It exits 0 after a graceful shutdown, 1 when it
// cannot start and 2 on bad flags. A view that stops applying the log (an
// unsupported log version, a malformed entry) keeps serving what it applied
// and reports why in Status.
package main
