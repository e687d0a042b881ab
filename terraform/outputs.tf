output "api_endpoint" {
  description = "The API's gRPC endpoint (TLS): Route 53 sends each client to the nearest healthy region."
  value       = "${var.domain_name}:443"
}

output "api_regional_endpoints" {
  description = "Each region's API load balancer, by region, for pinning a client to one region."
  value = {
    (var.regions[0]) = module.region_a.api_lb_dns_name
    (var.regions[1]) = module.region_b.api_lb_dns_name
    (var.regions[2]) = module.region_c.api_lb_dns_name
  }
}

output "buckets" {
  description = "Each region's bucket (log/ archive, checkpoints/ checkpoints), by region; each holds the whole history."
  value = {
    (var.regions[0]) = module.region_a.bucket_name
    (var.regions[1]) = module.region_b.bucket_name
    (var.regions[2]) = module.region_c.bucket_name
  }
}

output "log_peers" {
  description = "The log's peers list: every Raft voter's ID, region, stable DNS name, Raft and gRPC address (by name, as peers and clients dial them) and fixed IP."
  value = [
    for p in local.log_peers : {
      id           = p.id
      region       = p.region
      dns_name     = local.log_dns_names[p.id]
      raft_address = "${local.log_dns_names[p.id]}:${var.ports.log_raft}"
      grpc_address = "${local.log_dns_names[p.id]}:${var.ports.log_grpc}"
      ip           = p.ip
    }
  ]
}

output "alarms" {
  description = "CloudWatch alarms mirroring the Prometheus rules, by region and rule."
  value = {
    (var.regions[0]) = module.region_a.alarms
    (var.regions[1]) = module.region_b.alarms
    (var.regions[2]) = module.region_c.alarms
  }
}

output "view_groups" {
  description = "Autoscaling group of every view partition, by region and partition."
  value = {
    (var.regions[0]) = module.region_a.view_groups
    (var.regions[1]) = module.region_b.view_groups
    (var.regions[2]) = module.region_c.view_groups
  }
}
