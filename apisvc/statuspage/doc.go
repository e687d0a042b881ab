// Package statuspage serves the API server's status page: one
// self-contained HTML page (inline CSS, no scripts, no external assets)
// drawn from an apipb.StatusResponse.
//
// Contract:
//
//  1. Handler serves "/" only, for GET and HEAD; other paths are 404 and
//     other methods 405.
//  2. Each request calls the status function once, with the request's
//     context, and renders what it returns. The page reloads itself every
//     5 seconds (a meta refresh), so an open tab follows the cluster;
//     "?refresh=N" changes that to N seconds, and "?refresh=0" turns it off
//     (to read a tooltip, or in a test).
//  3. An error from the status function, or a nil response, is a 500 whose
//     body is still a page: it names the error, and it keeps refreshing, so
//     the tab recovers by itself when the API server does.
//  4. Everything from the response is escaped by html/template; the page
//     carries nothing the response did not say except the time it was drawn.
//  5. The page is grouped by cluster (datacenter). The response does not yet
//     say which datacenter a view belongs to, so today there is one group,
//     "this cluster"; clusters() is the one place that would split it.
package statuspage
