output "env" {
  description = "The environment file of every server and daemon (/etc/akutan/ROLE.env), by key: log/ID, view/PARTITION, api, truncator, pruner."
  value       = local.env_files
}

output "user_data" {
  description = "cloud-init user data (a shell script) of every server and daemon, by the same keys as env."
  value       = local.user_data
}

output "roles" {
  description = "The role of every key (log, view, api, truncator, pruner): the systemd unit akutan-ROLE.service it starts."
  value       = local.roles
}

output "metric_declarations" {
  description = "Per role, what the CloudWatch agent ships of the server's /metrics (its EMF metric declarations)."
  value       = local.metric_declarations
}
