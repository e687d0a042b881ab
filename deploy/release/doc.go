// Package release holds the tests of Akutan's release and of what
// terraform/ starts from it; it has no code of its own.
//
// `make release` packs the static binaries with deploy/systemd (one unit
// per role: log, view, api, truncator, pruner, each reading
// /etc/akutan/ROLE.env), deploy/env (an example of each env file) and
// install.sh. terraform/modules/server-config renders every server's env
// file and user data; the region module calls it for the cloud.
//
// The tests check that:
//
//  1. every role the Terraform module renders has a unit here and an
//     example env file, and every unit is hardened and reads its env file;
//  2. every AKUTAN_ name in the examples and in the rendered env files is a
//     flag of the binary (and subcommand) the role's unit runs, and the
//     servers accept the values (--print-config exits 0);
//  3. what Terraform would start, started here: the module, rendered by
//     .tools/bin/terraform with loopback inputs (no provider is needed, so
//     it applies offline), gives the env files; the test runs each unit's
//     ExecStart with that environment on 127.0.0.1 (3 log replicas, a view
//     of each space, an API server, the truncator and the pruner, over a
//     directory store), waits for /readyz and writes and looks up a fact.
//
// Only what one host cannot share is changed per process: data
// directories, the HTTP listener's port and the views' and API's gRPC
// ports (one per instance in the cloud, where every instance has its own
// address). The tests skip, saying why, without .tools/bin/terraform
// (bash terraform/check.sh builds it).
package release
