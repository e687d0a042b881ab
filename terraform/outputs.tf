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
  description = "The log's peers list: every Raft voter's ID, region, Raft address and gRPC address."
  value = [
    for p in local.log_peers : {
      id           = p.id
      region       = p.region
      raft_address = "${p.ip}:${var.ports.log_raft}"
      grpc_address = "${p.ip}:${var.ports.log_grpc}"
    }
  ]
}

output "view_groups" {
  description = "Autoscaling group of every view partition, by region and partition."
  value = {
    (var.regions[0]) = module.region_a.view_groups
    (var.regions[1]) = module.region_b.view_groups
    (var.regions[2]) = module.region_c.view_groups
  }
}
