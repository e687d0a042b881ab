# The API load balancer: a Network Load Balancer that terminates TLS on 443
# (ALPN h2 only, so gRPC passes through as HTTP/2) and forwards to the API
# servers' gRPC port. Target health is the servers' /readyz on their HTTP
# listener: an ALB's gRPC health check matches only the gRPC status code,
# and grpc.health.v1.Health/Check answers OK with NOT_SERVING in the body,
# so it can only ever see liveness.
#
# Route 53 routes between regions on each region's "fully available"
# verdict: a second TLS listener (var.verdict_port, open only to Route 53's
# health checkers) reaches the API servers' /verdict/fully-available, which
# answers 200 exactly while the server judges its region's cluster fully
# available.

resource "aws_acm_certificate" "api" {
  domain_name       = var.domain_name
  validation_method = "DNS"

  lifecycle {
    create_before_destroy = true
  }
}

# Every region validates the same name with the same record, hence
# allow_overwrite.
resource "aws_route53_record" "api_validation" {
  for_each = {
    for o in aws_acm_certificate.api.domain_validation_options : o.domain_name => o
  }

  zone_id         = var.route53_zone_id
  name            = each.value.resource_record_name
  type            = each.value.resource_record_type
  records         = [each.value.resource_record_value]
  ttl             = 300
  allow_overwrite = true
}

resource "aws_acm_certificate_validation" "api" {
  certificate_arn         = aws_acm_certificate.api.arn
  validation_record_fqdns = [for r in aws_route53_record.api_validation : r.fqdn]
}

resource "aws_lb" "api" {
  name                             = "${var.name}-${var.region}-api"
  load_balancer_type               = "network"
  internal                         = false
  subnets                          = aws_subnet.public[*].id
  security_groups                  = [aws_security_group.lb.id]
  enable_cross_zone_load_balancing = true
}

# Client traffic. Health is readiness: a server that is starting, cannot
# reach its views or the log, or shuts down leaves the rotation.
resource "aws_lb_target_group" "api" {
  name                 = "${var.name}-${var.region}-api"
  vpc_id               = aws_vpc.this.id
  target_type          = "instance"
  port                 = var.ports.api_grpc
  protocol             = "TCP"
  deregistration_delay = 30

  health_check {
    protocol            = "HTTP"
    port                = tostring(var.ports.http)
    path                = "/readyz"
    matcher             = "200"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }
}

resource "aws_lb_listener" "api" {
  load_balancer_arn = aws_lb.api.arn
  port              = 443
  protocol          = "TLS"
  alpn_policy       = "HTTP2Only"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = aws_acm_certificate_validation.api.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }
}

# Route 53's checkers reach /verdict/fully-available through this target
# group (the servers' HTTP listener). Its targets are health-checked on
# /readyz too: a checker lands on a server that judges the region fully
# available whenever one exists, and when none does the load balancer fails
# open and the checker reads a 503 with what is missing.
resource "aws_lb_target_group" "verdict" {
  name                 = "${var.name}-${var.region}-verdict"
  vpc_id               = aws_vpc.this.id
  target_type          = "instance"
  port                 = var.ports.http
  protocol             = "TCP"
  deregistration_delay = 10

  health_check {
    protocol            = "HTTP"
    port                = tostring(var.ports.http)
    path                = "/readyz"
    matcher             = "200"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }
}

resource "aws_lb_listener" "verdict" {
  load_balancer_arn = aws_lb.api.arn
  port              = var.verdict_port
  protocol          = "TLS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = aws_acm_certificate_validation.api.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.verdict.arn
  }
}

# The region's verdict as Route 53 sees it from outside: a region that is
# gone, unreachable or not fully available fails the check alike.
resource "aws_route53_health_check" "api" {
  type              = "HTTPS"
  fqdn              = aws_lb.api.dns_name
  port              = var.verdict_port
  resource_path     = "/verdict/fully-available"
  request_interval  = 10
  failure_threshold = 3
  measure_latency   = false

  tags = { Name = "${var.name}-${var.region}-fully-available" }
}

resource "aws_route53_record" "api" {
  zone_id         = var.route53_zone_id
  name            = var.domain_name
  type            = "A"
  set_identifier  = var.region
  health_check_id = aws_route53_health_check.api.id

  latency_routing_policy {
    region = var.region
  }

  alias {
    name                   = aws_lb.api.dns_name
    zone_id                = aws_lb.api.zone_id
    evaluate_target_health = true
  }
}
