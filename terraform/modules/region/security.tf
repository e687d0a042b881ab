# Security groups: each tier opens only what it needs.
#
#   clients --443--> lb --api_grpc--> api --view_grpc--> view
#   Route 53 checkers --verdict_port--> lb --http--> api (/verdict/fully-available)
#   lb --http--> api, view and log --http--> nothing else (/readyz, /metrics stay local)
#                                       \--log_grpc--> log <--raft/log_grpc--> log (all regions)
#   view --log_grpc--> log (all regions), view/log --443--> S3 (gateway endpoint)
#
# Raft crosses regions over VPC peering, where security groups cannot
# reference each other, so the log tier is opened to the deployment's VPC
# CIDRs and nothing wider. Only the load balancer's group is reachable from
# var.api_allowed_cidrs, and its verdict listener only from Route 53's
# health checkers.

resource "aws_security_group" "lb" {
  name        = "${var.name}-${var.region}-lb"
  description = "Akutan API load balancer: TLS gRPC from clients, verdicts to Route 53"
  vpc_id      = aws_vpc.this.id
}

resource "aws_security_group" "api" {
  name        = "${var.name}-${var.region}-api"
  description = "Akutan API servers: gRPC from the load balancer"
  vpc_id      = aws_vpc.this.id
}

resource "aws_security_group" "view" {
  name        = "${var.name}-${var.region}-view"
  description = "Akutan view servers: gRPC from the API servers"
  vpc_id      = aws_vpc.this.id
}

resource "aws_security_group" "log" {
  name        = "${var.name}-${var.region}-log"
  description = "Akutan log replicas: Raft and gRPC from the deployment VPCs"
  vpc_id      = aws_vpc.this.id
}

resource "aws_security_group" "endpoints" {
  name        = "${var.name}-${var.region}-endpoints"
  description = "VPC interface endpoints: HTTPS from the servers"
  vpc_id      = aws_vpc.this.id
}

resource "aws_security_group" "daemon" {
  name        = "${var.name}-${var.region}-daemon"
  description = "Akutan truncation and retention daemons: no ingress"
  vpc_id      = aws_vpc.this.id
}

# Daemons: the truncator reads and discards the log; both use the bucket.

resource "aws_vpc_security_group_egress_rule" "daemon_to_log" {
  for_each = toset(var.peer_vpc_cidrs)

  security_group_id = aws_security_group.daemon.id
  description       = "Log Info and DiscardPrefix"
  ip_protocol       = "tcp"
  from_port         = var.ports.log_grpc
  to_port           = var.ports.log_grpc
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "daemon_to_s3" {
  security_group_id = aws_security_group.daemon.id
  description       = "Catalogs, retention and the release in S3"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = aws_vpc_endpoint.s3.prefix_list_id
}

resource "aws_vpc_security_group_egress_rule" "api_to_s3" {
  security_group_id = aws_security_group.api.id
  description       = "The release in the artifacts bucket"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = aws_vpc_endpoint.s3.prefix_list_id
}

resource "aws_vpc_security_group_egress_rule" "view_to_endpoints" {
  security_group_id            = aws_security_group.view.id
  description                  = "Cloud Map and CloudWatch Logs endpoints"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.endpoints.id
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_from_view" {
  security_group_id            = aws_security_group.endpoints.id
  description                  = "HTTPS from the views"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.view.id
}

# Load balancer.

resource "aws_vpc_security_group_ingress_rule" "lb_https" {
  for_each = toset(var.api_allowed_cidrs)

  security_group_id = aws_security_group.lb.id
  description       = "TLS gRPC from API clients"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

# AWS publishes the checkers' addresses (ip-ranges.json); nothing else may
# read the verdict listener, which forwards to the servers' HTTP listener.
data "aws_ip_ranges" "route53_healthchecks" {
  services = ["route53_healthchecks"]
}

resource "aws_vpc_security_group_ingress_rule" "lb_verdict" {
  for_each = toset(data.aws_ip_ranges.route53_healthchecks.cidr_blocks)

  security_group_id = aws_security_group.lb.id
  description       = "Route 53 health checks of the region's verdict"
  ip_protocol       = "tcp"
  from_port         = var.verdict_port
  to_port           = var.verdict_port
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "lb_to_api" {
  for_each = { grpc = var.ports.api_grpc, http = var.ports.http }

  security_group_id            = aws_security_group.lb.id
  description                  = "gRPC, /readyz health checks and verdicts to the API servers"
  ip_protocol                  = "tcp"
  from_port                    = each.value
  to_port                      = each.value
  referenced_security_group_id = aws_security_group.api.id
}

# API servers.

resource "aws_vpc_security_group_ingress_rule" "api_from_lb" {
  for_each = { grpc = var.ports.api_grpc, http = var.ports.http }

  security_group_id            = aws_security_group.api.id
  description                  = "gRPC, /readyz health checks and verdicts from the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = each.value
  to_port                      = each.value
  referenced_security_group_id = aws_security_group.lb.id
}

resource "aws_vpc_security_group_egress_rule" "api_to_view" {
  security_group_id            = aws_security_group.api.id
  description                  = "Lookups to the views"
  ip_protocol                  = "tcp"
  from_port                    = var.ports.view_grpc
  to_port                      = var.ports.view_grpc
  referenced_security_group_id = aws_security_group.view.id
}

resource "aws_vpc_security_group_egress_rule" "api_to_log" {
  for_each = toset(var.peer_vpc_cidrs)

  security_group_id = aws_security_group.api.id
  description       = "Appends and leader reads to the log"
  ip_protocol       = "tcp"
  from_port         = var.ports.log_grpc
  to_port           = var.ports.log_grpc
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "api_to_endpoints" {
  security_group_id            = aws_security_group.api.id
  description                  = "Cloud Map and CloudWatch Logs endpoints"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.endpoints.id
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_from_api" {
  security_group_id            = aws_security_group.endpoints.id
  description                  = "HTTPS from the API servers"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.api.id
}

# Views.

resource "aws_vpc_security_group_ingress_rule" "view_from_api" {
  security_group_id            = aws_security_group.view.id
  description                  = "Lookups from the API servers"
  ip_protocol                  = "tcp"
  from_port                    = var.ports.view_grpc
  to_port                      = var.ports.view_grpc
  referenced_security_group_id = aws_security_group.api.id
}

resource "aws_vpc_security_group_egress_rule" "view_to_log" {
  for_each = toset(var.peer_vpc_cidrs)

  security_group_id = aws_security_group.view.id
  description       = "Log reads (tailing stream)"
  ip_protocol       = "tcp"
  from_port         = var.ports.log_grpc
  to_port           = var.ports.log_grpc
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "view_to_s3" {
  security_group_id = aws_security_group.view.id
  description       = "Checkpoints and log archive in S3"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = aws_vpc_endpoint.s3.prefix_list_id
}

# Log replicas.

locals {
  # Every (VPC CIDR, log port) pair: Raft and gRPC, from and to every region.
  log_rules = {
    for pair in setproduct(var.peer_vpc_cidrs, ["log_raft", "log_grpc"]) :
    "${pair[1]}-${pair[0]}" => { cidr = pair[0], port = var.ports[pair[1]] }
  }
}

resource "aws_vpc_security_group_ingress_rule" "log_from_vpcs" {
  for_each = local.log_rules

  security_group_id = aws_security_group.log.id
  description       = "Raft and log gRPC from the deployment VPCs"
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr
}

resource "aws_vpc_security_group_egress_rule" "log_to_vpcs" {
  for_each = local.log_rules

  security_group_id = aws_security_group.log.id
  description       = "Raft and log gRPC to the other replicas"
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr
}

# The CloudWatch agent ships the scraped metrics through the Logs endpoint.
resource "aws_vpc_security_group_egress_rule" "log_to_endpoints" {
  security_group_id            = aws_security_group.log.id
  description                  = "CloudWatch Logs endpoint, for metrics"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.endpoints.id
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_from_log" {
  security_group_id            = aws_security_group.endpoints.id
  description                  = "HTTPS from the log replicas"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.log.id
}

resource "aws_vpc_security_group_egress_rule" "log_to_s3" {
  security_group_id = aws_security_group.log.id
  description       = "Log archive in S3"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = aws_vpc_endpoint.s3.prefix_list_id
}
