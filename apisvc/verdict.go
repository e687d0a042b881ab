package apisvc

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/akutan/akutan/proto/apipb"
)

// VerdictTimeout bounds one verdict request: the evaluation fans out to the
// log, the views and the peer API servers, and a checker that waits longer
// than its own timeout learns nothing.
const VerdictTimeout = 4 * time.Second

// FullyAvailableHandler answers whether this API server's datacenter is
// fully available, evaluated now from status (Server.Status): 200 "fully
// available", or 503 with one missing item per line. A status that cannot
// be gathered is 503 too: a checker must never read "up" from an error.
//
// It is the datacenter's verdict, not this process's readiness; a load
// balancer's or DNS failover's health check (terraform/, Route 53) reads it
// to route between datacenters.
func FullyAvailableHandler(status func(ctx context.Context) (*apipb.StatusResponse, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), VerdictTimeout)
		defer cancel()
		resp, err := status(ctx)
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not fully available\nstatus: %v\n", err)
			return
		}
		v := resp.GetFullyAvailable()
		if v.GetOk() {
			fmt.Fprintln(w, "fully available")
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "not fully available")
		if v == nil {
			fmt.Fprintln(w, "no verdict in the status")
		}
		for _, m := range v.GetMissing() {
			fmt.Fprintln(w, m)
		}
	})
}
