variable "name" {
  description = "Deployment name; prefixes every resource name."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,11}$", var.name))
    error_message = "The name must be 1-12 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "region" {
  description = "AWS region of this module's provider; names resources and the Route 53 latency record."
  type        = string
}

variable "vpc_cidr" {
  description = "CIDR of this region's VPC, /16 to /20; must not overlap the other regions' VPCs."
  type        = string

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) <= 20 && tonumber(split("/", var.vpc_cidr)[1]) >= 16
    error_message = "The VPC CIDR must be a valid IPv4 block from /16 to /20."
  }
}

variable "peer_vpc_cidrs" {
  description = "CIDRs of every VPC of the deployment, this one included; the only sources the log tier accepts."
  type        = list(string)

  validation {
    condition     = alltrue([for c in var.peer_vpc_cidrs : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "Every peer VPC CIDR must be a valid IPv4 block narrower than 0.0.0.0/0."
  }
}

variable "log_voters" {
  description = "Number of Raft voters of the log in this region."
  type        = number

  validation {
    condition     = var.log_voters >= 0 && floor(var.log_voters) == var.log_voters
    error_message = "The number of log voters must be a whole number >= 0."
  }
}

variable "log_peers" {
  description = "Every Raft voter of the log, in all regions (the log server's peers list): ID, region and private IP."
  type = list(object({
    id     = string
    region = string
    ip     = string
  }))
}

variable "view_partitions" {
  description = "Partitions per hash space (keys HashSP and HashPO); each space is split evenly over [0, 2^64)."
  type        = map(number)

  validation {
    condition     = alltrue([for s, n in var.view_partitions : contains(["HashSP", "HashPO"], s) && n >= 1 && floor(n) == n])
    error_message = "Keys must be HashSP or HashPO and each partition count a whole number >= 1."
  }
}

variable "view_replicas" {
  description = "View instances per partition in this region."
  type        = number

  validation {
    condition     = var.view_replicas >= 2 && floor(var.view_replicas) == var.view_replicas
    error_message = "Each partition needs at least 2 views per region, so losing one keeps it served."
  }
}

variable "api_servers" {
  description = "API servers in this region."
  type        = number

  validation {
    condition     = var.api_servers >= 2 && floor(var.api_servers) == var.api_servers
    error_message = "At least 2 API servers per region."
  }
}

variable "instance_types" {
  description = "EC2 instance types of the log, view and API tiers and the control-plane daemons; all of var.architecture."
  type = object({
    log    = string
    view   = string
    api    = string
    daemon = string
  })
}

variable "ports" {
  description = "TCP ports: log Raft and gRPC, view gRPC, API gRPC, and every server's HTTP listener (/readyz, /metrics)."
  type = object({
    log_raft  = number
    log_grpc  = number
    view_grpc = number
    api_grpc  = number
    http      = number
  })
}

variable "ami_name_filter" {
  description = "Name filter of the stock AMI (systemd, xfsprogs, the AWS CLI); the newest match of var.architecture is used."
  type        = string
  default     = "al2023-ami-2023.*"
}

variable "ami_owners" {
  description = "Accounts whose AMIs may match ami_name_filter."
  type        = list(string)
  default     = ["amazon"]
}

variable "architecture" {
  description = "CPU architecture of every instance: x86_64 (release linux/amd64) or arm64 (linux/arm64)."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "x86_64 or arm64."
  }
}

variable "internal_domain" {
  description = "Private DNS domain; this region's Cloud Map namespace is <region>.<internal_domain>."
  type        = string
  default     = "akutan.internal"
}

variable "checkpoint_interval" {
  description = "How often every view checkpoints into the bucket; the log is truncated only below checkpoints."
  type        = string
  default     = "10m"
}

variable "critical_clusters" {
  description = "Clusters (one per region) that must be checkpointed at every point before the log is truncated."
  type        = list(string)
}

variable "release_version" {
  description = "Version of the release to install (make release: dist/akutan-VERSION-linux-ARCH.tar.gz)."
  type        = string
}

variable "release_dir" {
  description = "Directory holding the release tarballs that Terraform uploads to the artifacts bucket."
  type        = string
}

variable "log_volume_size_gib" {
  description = "Size of each log replica's Raft data volume, in GiB."
  type        = number
  default     = 200
}

variable "domain_name" {
  description = "DNS name of the API, shared by all regions through latency records."
  type        = string
}

variable "route53_zone_id" {
  description = "Route 53 public hosted zone that holds domain_name."
  type        = string
}

variable "api_allowed_cidrs" {
  description = "Client CIDRs allowed to reach the API load balancer on 443."
  type        = list(string)
}

variable "bucket_name" {
  description = "Name of this region's bucket for the log archive (log/) and view checkpoints (checkpoints/)."
  type        = string
}

variable "replication_destinations" {
  description = "The other regions' buckets and KMS keys; this bucket replicates everything to each."
  type = list(object({
    region      = string
    bucket_arn  = string
    kms_key_arn = string
  }))
}

variable "noncurrent_version_expiration_days" {
  description = "Days a deleted or overwritten object version is kept before it expires."
  type        = number

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "Keep noncurrent versions at least one day."
  }
}

variable "abort_incomplete_multipart_upload_days" {
  description = "Days after which an unfinished multipart upload (a torn checkpoint upload) is aborted."
  type        = number

  validation {
    condition     = var.abort_incomplete_multipart_upload_days >= 1
    error_message = "Abort incomplete uploads after at least one day."
  }
}

variable "log_dns_names" {
  description = "Stable DNS name of every log voter (all regions), by voter ID: the root module's private zone. Peers, views, API servers and the truncator dial these; each voter binds its own fixed IP."
  type        = map(string)
}

variable "verdict_port" {
  description = "Port of the load balancer's TLS listener that forwards Route 53's health checks to the API servers' /verdict/fully-available."
  type        = number
  default     = 8443

  validation {
    condition     = var.verdict_port > 0 && var.verdict_port < 65536 && var.verdict_port != 443
    error_message = "A TCP port other than 443."
  }
}

variable "alarm_actions" {
  description = "ARNs (e.g. an SNS topic of this region) notified when a CloudWatch alarm fires or clears; empty: the alarms only show in the console."
  type        = list(string)
  default     = []
}
