# Security groups: each tier opens only what it needs.
#
#   clients --443--> alb --api_grpc--> api --view_grpc--> view
#                                       \--log_grpc--> log <--raft/log_grpc--> log (all regions)
#   view --log_grpc--> log (all regions), view/log --443--> S3 (gateway endpoint)
#
# Raft crosses regions over VPC peering, where security groups cannot
# reference each other, so the log tier is opened to the deployment's VPC
# CIDRs and nothing wider. Only the load balancer's group is reachable from
# var.api_allowed_cidrs.

resource "aws_security_group" "alb" {
  name        = "${var.name}-${var.region}-alb"
  description = "Akutan API load balancer: TLS gRPC from clients"
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
  description = "VPC interface endpoints: HTTPS from the API servers and views"
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
  description                  = "Cloud Map endpoint, for registration"
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

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  for_each = toset(var.api_allowed_cidrs)

  security_group_id = aws_security_group.alb.id
  description       = "TLS gRPC from API clients"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "alb_to_api" {
  security_group_id            = aws_security_group.alb.id
  description                  = "gRPC and health checks to the API servers"
  ip_protocol                  = "tcp"
  from_port                    = var.ports.api_grpc
  to_port                      = var.ports.api_grpc
  referenced_security_group_id = aws_security_group.api.id
}

# API servers.

resource "aws_vpc_security_group_ingress_rule" "api_from_alb" {
  security_group_id            = aws_security_group.api.id
  description                  = "gRPC from the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = var.ports.api_grpc
  to_port                      = var.ports.api_grpc
  referenced_security_group_id = aws_security_group.alb.id
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
  description                  = "Cloud Map endpoint, for registration"
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

resource "aws_vpc_security_group_egress_rule" "log_to_s3" {
  security_group_id = aws_security_group.log.id
  description       = "Log archive in S3"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = aws_vpc_endpoint.s3.prefix_list_id
}
