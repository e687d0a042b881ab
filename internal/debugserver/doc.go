// Package debugserver serves Go's runtime profiles (net/http/pprof) for a
// running Akutan server, on an address the operator chooses with the
// servers' --debug-addr flag; off unless asked for.
//
// Contract: Start listens on addr (port 0 picks a free one) and serves
// /debug/pprof/ from its own mux, never http.DefaultServeMux, so nothing
// else a dependency registers there is exposed. The profiles reveal
// internals (goroutine stacks, command line): bind it to loopback or a
// private interface.
package debugserver
