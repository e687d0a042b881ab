# One region of the Akutan deployment: a VPC over three availability zones,
# this region's share of the log's Raft voters, a full Akutan cluster (views
# for every partition of both hash spaces, API servers behind a load
# balancer), and a bucket that replicates to the other regions.
#
#   network.tf   VPC, subnets, routes, endpoints
#   security.tf  security groups, one per tier
#   iam.tf       instance roles, least privilege per tier
#   storage.tf   KMS key, bucket, lifecycle, replication
#   compute.tf   log voters, view and API autoscaling groups
#   servers.tf   what they run (modules/server-config), Cloud Map discovery,
#                the artifacts bucket, the truncator and pruner singletons
#   lb.tf        API load balancer (readiness), certificate, Route 53
#                latency record with the region's verdict as its health
#   monitoring.tf  CloudWatch agent metrics, alarms mirroring the Prometheus
#                rules

locals {
  # The cluster's name: one Akutan cluster (views + API) per region.
  cluster = "${var.name}-${var.region}"
}
