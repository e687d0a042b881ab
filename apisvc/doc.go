// Package apisvc is Akutan's API server: the public gRPC API (apipb) for
// writes, lookups and cluster status. It is stateless: writes go to the log,
// reads fan out over views (apisvc/internal/fanout), and any number of API
// servers may run side by side.
//
// Contract:
//
//  1. A write is one log entry: one transaction, visible atomically at the
//     index Write returns, on every view.
//  2. Names are external IDs, stored as facts (node, HasExternalID, "name").
//     HasExternalID is the reserved node 1; IDs below 2^20 are reserved for
//     such built-ins, since log-derived IDs are index<<20 | position.
//  3. A write that creates names is a compare-and-append: the names are
//     resolved at an index R every view has applied, and the entry is
//     appended only if no append after R claimed any of the new names (the
//     log's guard keys). Otherwise the write resolves again at the
//     conflicting index and retries, so concurrent creators of one name end
//     with exactly one node, and the losers use it. See DESIGN.md.
//  4. A lookup reads at one index chosen by its IndexConstraint, resolves
//     names at that index, and answers with that index and with the names
//     of the nodes it returns.
//  5. Errors are mapped to gRPC codes in one table (errors.go); context
//     errors pass through as Canceled and DeadlineExceeded.
package apisvc
