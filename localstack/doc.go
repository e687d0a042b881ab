// Package localstack runs a whole Akutan deployment on 127.0.0.1 for
// development and end-to-end tests: three "datacenters" dc1..dc3 started by
// up.sh, stopped by down.sh, and failed one at a time by dc.sh. Everything
// it starts is recorded under .localstack/pids, and down.sh stops exactly
// that. The Go test here runs the scripts as a user would.
package localstack
