output "api_endpoint" {
  description = "The API's gRPC endpoint (TLS), routed by latency."
  value       = module.akutan.api_endpoint
}

output "buckets" {
  description = "Each region's bucket, by region."
  value       = module.akutan.buckets
}

output "log_peers" {
  description = "The log's peers list."
  value       = module.akutan.log_peers
}
