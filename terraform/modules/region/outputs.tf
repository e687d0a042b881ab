output "vpc_id" {
  description = "ID of this region's VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr" {
  description = "CIDR of this region's VPC."
  value       = aws_vpc.this.cidr_block
}

output "private_route_table_id" {
  description = "Route table of the private subnets; the root module adds the peering routes to it."
  value       = aws_route_table.private.id
}

output "bucket_name" {
  description = "This region's bucket (log/ archive, checkpoints/ checkpoints)."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of this region's bucket."
  value       = aws_s3_bucket.this.arn
}

output "kms_key_arn" {
  description = "ARN of the KMS key that encrypts this region's bucket."
  value       = aws_kms_key.bucket.arn
}

# Computed from variables only, not from instances, so that the root module
# can feed every region's voters back into every region without a cycle.
output "log_voters" {
  description = "This region's Raft voters: ID, region and private IP."
  value       = [for v in local.log_voters : { id = v.id, region = v.region, ip = v.ip }]
}

output "api_lb_dns_name" {
  description = "DNS name of this region's API load balancer."
  value       = aws_lb.api.dns_name
}

output "view_groups" {
  description = "Autoscaling group of each view partition, keyed by space and partition (e.g. hashsp-0)."
  value       = { for k, g in aws_autoscaling_group.view : k => g.name }
}

output "alarms" {
  description = "CloudWatch alarm names, keyed by the Prometheus rule each mirrors."
  value       = { for k, a in aws_cloudwatch_metric_alarm.alert : k => a.alarm_name }
}
