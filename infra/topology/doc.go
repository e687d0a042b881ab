// Package topology reads the declarative topology file: one YAML file that
// describes an Akutan database, that is its datacenters, the log voters,
// each DC's partitions of each hash space with their replicas, and each
// DC's API servers. Servers lists every server it asks for, with a stable
// name, so the control plane and the local stack (localstack/topology.yaml,
// read through `akutan topology servers`) use one source.
//
// # The format, by example
//
//	version: 1                  # required; the only version is 1
//	ports:                      # optional: derive the addresses left out
//	  host: 127.0.0.1           # default 127.0.0.1
//	  base: 17000
//	datacenters:                # in order; a DC's position (1-based) places its derived ports
//	  - name: dc1               # letters, digits, - or _
//	    log_voters: 1           # voters with derived addresses ...
//	    api_servers: 1          # ... and API servers likewise
//	    views:
//	      HashSP: {partitions: 2, replicas: 1}   # 2 even ranges, 1 view each
//	      HashPO: {partitions: 2, replicas: 1}
//	  - name: dc2
//	    log:                    # ... or listed, with explicit addresses
//	      - {id: log-dc2, raft: 10.0.2.4:7000, grpc: 10.0.2.4:7001}
//	    api:
//	      - {addr: 10.0.2.5:7003}
//	    views:
//	      HashSP:
//	        replicas: 3         # each range's views, unless it says
//	        ranges:             # explicit ranges [start, end): decimal or 0x hex;
//	          - {start: 0, end: 0x8000000000000000}      # end max (or 0) is 2^64
//	          - {start: 0x8000000000000000, end: max, addrs: [10.0.2.6:7002, 10.0.2.7:7002, 10.0.2.8:7002]}
//	      HashPO:
//	        split_in_progress: true   # old and new ranges side by side
//	        ranges:
//	          - {start: 0, end: max, name: old}
//	          - {start: 0, end: 0x8000000000000000}
//	          - {start: 0x8000000000000000, end: max}
//
// A count and its list are alternatives: log_voters or log, api_servers or
// api, partitions or ranges. A listed server or range may leave any
// address out to have it derived. partitions: N is the ranges
// [floor(p * 2^64 / N), floor((p+1) * 2^64 / N)), the formula of
// Terraform's view_partitions (EvenRanges).
//
// # Names
//
// Every server has a stable name, derived from its place unless the file
// gives one:
//
//   - log voter i of DC dc: log-dc for the first, log-dc-i after it (or its id);
//   - API server j: api-dc, then api-dc-j (or its name);
//   - replica r of range p of space sp or po: view-dc-sp-pP-rR, where pP is
//     the range's name, p followed by its position in the list by default.
//
// Appending a server or a range therefore never renames another. Name a
// range when ranges before it may be removed, as at the end of a split.
//
// # Derived addresses
//
// With ports set, the DC at position d (1-based) gets, from base: log voter
// i at Raft base+d+10i and gRPC base+100+d+10i; API server j at
// base+200+d+10j; its n-th view (1-based, in listing order: HashSP then
// HashPO, by range, by replica) at base+300+(d-1)*100+n. That is the local
// stack's layout, which keeps base+900 and up for MinIO and Prometheus and
// puts every server's HTTP listener at its gRPC port + 1000. It covers up
// to 9 DCs (6 with derived view addresses), 10 log voters and 10 API
// servers per DC and 99 views per DC; beyond that, give addresses.
//
// # Rules (Validate)
//
// Parse decodes strictly: an unknown key, a second document or another
// version is an error (with its line). Validate then reports every problem
// at once, each with its place, such as
// "datacenters[1] (dc2).views.HashSP: nothing covers [0x8000000000000000,
// 2^64)":
//
//  1. At least one DC; DC names unique and well formed.
//  2. At least one log voter in all.
//  3. A DC with views has views of both HashSP and HashPO and at least one
//     API server; a DC with API servers has views. A DC with only log
//     voters is a witness for the log's quorum.
//  4. Each DC's ranges of each space tile [0, 2^64) exactly: no gap, no
//     overlap, no empty range. With split_in_progress they may overlap but
//     must still cover every point.
//  5. Counts are not negative, and at most 32 log voters, 256 API servers,
//     1024 partitions per space and 32 replicas per range in one DC; a
//     range's replicas matches its addrs.
//  6. Every address is host:port, and none is used twice; no two servers
//     share a name.
//  7. An address left out needs ports, within the derived layout's limits.
package topology
