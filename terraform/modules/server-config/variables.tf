variable "cluster" {
  description = "This datacenter's Akutan cluster name (views record it in checkpoints; the API reports it)."
  type        = string
}

variable "store_url" {
  description = "Object store of this region: the log's --archive, the views' --store, the daemons' --store (s3://bucket?region=R&sse=aws:kms&kms_key_id=K, or a directory)."
  type        = string
}

variable "log_peers" {
  description = "Every Raft voter of the log, all regions: ID, Raft address (host:port, the literal address Raft records) and gRPC address."
  type = list(object({
    id        = string
    raft_addr = string
    grpc_addr = string
  }))
}

variable "local_log_ids" {
  description = "IDs of the voters that run in this region; one log user data each."
  type        = list(string)
}

variable "log_clients" {
  description = "Log gRPC addresses for views, API servers and the truncator, this region's first (views tail the first)."
  type        = list(string)
}

variable "view_ranges" {
  description = "This cluster's view partitions by key (e.g. hashsp-0): space (HashSP or HashPO) and range [start, end) as 0x hex."
  type = map(object({
    space = string
    start = string
    end   = string
  }))
}

variable "views_dns" {
  description = "host:port DNS names whose addresses are this cluster's views (one per partition), the API servers' --views-dns."
  type        = list(string)
}

variable "listen" {
  description = "Addresses the servers bind: view and API gRPC, and every server's HTTP listener (/healthz, /readyz, /metrics)."
  type = object({
    view_grpc = string
    api_grpc  = string
    http      = string
  })
}

variable "data_dir" {
  description = "Data directory of log replicas and views, on the disk the user data mounts at /var/lib/akutan."
  type        = string
  default     = "/var/lib/akutan/data"
}

variable "checkpoint_interval" {
  description = "How often each view writes a checkpoint (akutan-view --checkpoint-interval); the log can be truncated only below checkpoints."
  type        = string
  default     = "10m"
}

variable "critical_clusters" {
  description = "Clusters every point of which must be checkpointed before the log is truncated (akutan log truncate --clusters)."
  type        = list(string)
}

variable "daemons" {
  description = "The control-plane daemons' schedule: truncation interval and delay, retention interval, checkpoints kept, grace before deletion."
  type = object({
    truncate_every = string
    truncate_delay = string
    prune_every    = string
    prune_keep     = number
    prune_grace    = string
  })
  default = {
    truncate_every = "1m"
    truncate_delay = "3m"
    prune_every    = "1h"
    prune_keep     = 3
    prune_grace    = "24h"
  }
}

variable "release" {
  description = "Where the user data fetches the release: the artifacts bucket (empty: the release is already installed) and the version (dist/akutan-VERSION-linux-ARCH.tar.gz)."
  type = object({
    bucket  = string
    version = string
  })
}

variable "discovery" {
  description = "Cloud Map service ID each view partition (by key) and the API servers (key api) register in, health-checked from /readyz; empty map: no registration."
  type        = map(string)
  default     = {}
}

variable "log_disks" {
  description = "EBS volume ID of each local log voter's Raft disk, by voter ID; a voter without one keeps its data on the root disk."
  type        = map(string)
  default     = {}
}

variable "log_listen" {
  description = "Addresses each local log voter binds, by voter ID (raft_addr, grpc_addr: its fixed IP); a voter not listed binds its log_peers addresses."
  type = map(object({
    raft_addr = string
    grpc_addr = string
  }))
  default = {}
}

variable "metrics" {
  description = "Where the CloudWatch agent ships each server's scraped Prometheus metrics (CloudWatch Logs group and metric namespace); null: no agent."
  type = object({
    log_group = string
    namespace = string
  })
  default = null
}
