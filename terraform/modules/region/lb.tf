# The API load balancer: TLS on 443, gRPC to the API servers, health checked
# on the standard gRPC health service. This region's latency record in
# Route 53 is withdrawn when the load balancer has no healthy API server.

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
  name                       = "${var.name}-${var.region}-api"
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = aws_subnet.public[*].id
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
}

resource "aws_lb_target_group" "api" {
  name             = "${var.name}-${var.region}-api"
  vpc_id           = aws_vpc.this.id
  target_type      = "instance"
  port             = var.ports.api_grpc
  protocol         = "HTTP"
  protocol_version = "GRPC"

  # grpc.health.v1.Health/Check answers OK (status 0) only while the server
  # is SERVING.
  health_check {
    path                = "/grpc.health.v1.Health/Check"
    matcher             = "0"
    port                = "traffic-port"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }

  deregistration_delay = 30
}

resource "aws_lb_listener" "api" {
  load_balancer_arn = aws_lb.api.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = aws_acm_certificate_validation.api.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }
}

# Route 53 health: the region is healthy while the load balancer has at least
# one target passing the gRPC health check. A metric-based check also works
# where Route 53's own checkers could not reach the endpoint.
resource "aws_cloudwatch_metric_alarm" "api_healthy" {
  alarm_name          = "${var.name}-${var.region}-api-healthy-hosts"
  alarm_description   = "No Akutan API server in ${var.region} passes the gRPC health check"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "HealthyHostCount"
  statistic           = "Minimum"
  period              = 60
  evaluation_periods  = 2
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"

  dimensions = {
    LoadBalancer = aws_lb.api.arn_suffix
    TargetGroup  = aws_lb_target_group.api.arn_suffix
  }
}

resource "aws_route53_health_check" "api" {
  type                    = "CLOUDWATCH_METRIC"
  cloudwatch_alarm_name   = aws_cloudwatch_metric_alarm.api_healthy.alarm_name
  cloudwatch_alarm_region = var.region
  # A region that is gone takes its CloudWatch with it: no data means down.
  insufficient_data_health_status = "Unhealthy"

  tags = { Name = "${var.name}-${var.region}-api" }
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
