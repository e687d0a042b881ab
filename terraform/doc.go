// Package terraform holds the three-region layout; its tests check the
// layout's invariants offline.
//
// The layout itself is HCL: the root module (three regions, one provider
// alias and one region module each), modules/region, modules/peering and
// examples/. The tests parse it with hashicorp/hcl, evaluate what can be
// evaluated without a cloud account (variables' defaults, module arguments,
// locals), and check that:
//
//  1. there are exactly three regions by default, one region module per
//     provider alias;
//  2. the log's Raft voters are spread so that losing any one region keeps a
//     majority;
//  3. every region runs at least two views of every partition, and each hash
//     space's partitions tile [0, 2^64) exactly;
//  4. every bucket is versioned, KMS-encrypted, closed to the public,
//     lifecycled and replicated, and every region replicates to every other;
//  5. no security group rule is open to the world except on the API load
//     balancer's group;
//  6. every variable has a description and a type, and every module has
//     versions.tf, variables.tf, outputs.tf and README.md.
//
// invariants_test.go adds issue 15's checks (numbered 7-12 there): no
// bucket receives replication into a prefix it writes itself (today's
// full mesh is the one known open violation); each role's IAM policy names
// only its own keys and only the pruner deletes; every role has a unit in
// deploy/systemd; the truncator and pruner run in every region as
// singletons; health checks point at readiness (/readyz for target groups,
// /verdict/fully-available for Route 53, no ELB-health replacement); the
// CloudWatch alarms mirror deploy/prometheus/alerts.yml.
//
// Each checker also runs against HCL that breaks its rule (small snippets,
// or a copy of the layout with one mutation), so the tests are known to
// fail when the layout does. Formatting and lint are check.sh's job.
package terraform
