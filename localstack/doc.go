// Package localstack runs a whole Akutan deployment on 127.0.0.1 for
// development and end-to-end tests, as the topology file topology.yaml
// (format: infra/topology; AKUTAN_TOPOLOGY names another) describes it:
// three "datacenters" dc1..dc3, each one cluster, started by up.sh, stopped
// by down.sh, and failed one at a time by dc.sh. lib.sh reads the file
// through `akutan topology servers`, so the scripts and the control plane
// share one source. Everything it starts is recorded under
// .localstack/pids, and down.sh stops exactly that. The Go test here runs
// the scripts as a user would.
package localstack
