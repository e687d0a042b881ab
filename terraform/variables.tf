variable "name" {
  description = "Deployment name; prefixes every resource and bucket name."
  type        = string
  default     = "akutan"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,11}$", var.name))
    error_message = "The name must be 1-12 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "regions" {
  description = "The three AWS regions (datacenters), in the order of the provider aliases region_a, region_b, region_c."
  type        = list(string)
  default     = ["us-east-1", "us-west-2", "eu-west-1"]

  validation {
    condition     = length(var.regions) == 3 && length(distinct(var.regions)) == 3
    error_message = "Exactly three distinct regions: the layout has one provider alias and one module block per region."
  }

  validation {
    condition     = alltrue([for r in var.regions : can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]+$", r))])
    error_message = "Each region must be an AWS region name such as us-east-1."
  }
}

variable "vpc_cidrs" {
  description = "One VPC CIDR per region (/16 to /20), in the order of var.regions; they must not overlap, since the VPCs are peered."
  type        = list(string)
  default     = ["10.10.0.0/16", "10.20.0.0/16", "10.30.0.0/16"]

  validation {
    condition     = length(var.vpc_cidrs) == 3 && length(distinct(var.vpc_cidrs)) == 3
    error_message = "Exactly three distinct VPC CIDRs, one per region."
  }
}

variable "log_voters_per_region" {
  description = "Raft voters of the log in each region, in the order of var.regions; together they are the log server's peers list."
  type        = list(number)
  default     = [2, 2, 1]

  validation {
    condition     = length(var.log_voters_per_region) == 3 && alltrue([for n in var.log_voters_per_region : n >= 0 && floor(n) == n])
    error_message = "Give three whole numbers of voters, one per region."
  }

  # Losing the region that holds the most voters must leave a majority.
  validation {
    condition = (
      sum(concat([0], var.log_voters_per_region)) - max(concat([0], var.log_voters_per_region)...)
      >= floor(sum(concat([0], var.log_voters_per_region)) / 2) + 1
    )
    error_message = "Losing any one region must keep a Raft majority: e.g. [1, 1, 1] or [2, 2, 1], not [2, 1, 1]."
  }
}

variable "view_partitions" {
  description = "Partitions per hash space (keys HashSP and HashPO). Each partition is a view server flag set: space and hash range [start, end), splitting 2^64 evenly."
  type        = map(number)
  default     = { HashSP = 2, HashPO = 2 }

  validation {
    condition = (
      length(var.view_partitions) == 2 && contains(keys(var.view_partitions), "HashSP") && contains(keys(var.view_partitions), "HashPO")
      && alltrue([for n in values(var.view_partitions) : n >= 1 && floor(n) == n])
    )
    error_message = "Give a whole number >= 1 of partitions for exactly the spaces HashSP and HashPO."
  }
}

variable "view_replicas_per_region" {
  description = "View servers per partition in every region. Three makes a region healthy; two is the least that survives losing one."
  type        = number
  default     = 3

  validation {
    condition     = var.view_replicas_per_region >= 2 && floor(var.view_replicas_per_region) == var.view_replicas_per_region
    error_message = "At least 2 views per partition per region."
  }
}

variable "api_servers_per_region" {
  description = "API servers in every region, behind that region's load balancer."
  type        = number
  default     = 3

  validation {
    condition     = var.api_servers_per_region >= 2 && floor(var.api_servers_per_region) == var.api_servers_per_region
    error_message = "At least 2 API servers per region."
  }
}

variable "instance_types" {
  description = "EC2 instance types (all x86_64): log voters (EBS-backed Raft stores), views (local NVMe for Pebble), API servers, and the truncation and retention daemons."
  type = object({
    log    = string
    view   = string
    api    = string
    daemon = string
  })
  default = {
    log    = "m6i.large"
    view   = "i4i.large"
    api    = "c6i.large"
    daemon = "t3.small"
  }
}

variable "ports" {
  description = "TCP ports the servers listen on: log Raft, log gRPC, view gRPC, API gRPC, and every server's HTTP listener (/readyz, /metrics)."
  type = object({
    log_raft  = number
    log_grpc  = number
    view_grpc = number
    api_grpc  = number
    http      = number
  })
  default = {
    log_raft  = 7000
    log_grpc  = 7001
    view_grpc = 7002
    api_grpc  = 7003
    http      = 9090
  }

  validation {
    condition     = length(distinct(values(var.ports))) == 5 && alltrue([for p in values(var.ports) : p > 0 && p < 65536])
    error_message = "Five distinct TCP ports."
  }
}

variable "internal_domain" {
  description = "Private DNS domain of the deployment: the log voters' stable names (<voter ID>.<internal_domain>) and each region's Cloud Map namespace (<region>.<internal_domain>)."
  type        = string
  default     = "akutan.internal"

  validation {
    condition     = can(regex("^[a-z0-9-]+(\\.[a-z0-9-]+)+$", var.internal_domain))
    error_message = "A DNS domain of at least two labels, e.g. akutan.internal."
  }
}

variable "ami_name_filter" {
  description = "Name filter of the stock x86_64 AMI in every region (Amazon Linux 2023: systemd, xfsprogs, the AWS CLI); the release is installed by user data."
  type        = string
  default     = "al2023-ami-2023.*"
}

variable "release_version" {
  description = "Version of the release to deploy (make release writes dist/akutan-VERSION-linux-ARCH.tar.gz)."
  type        = string
}

variable "release_dir" {
  description = "Directory of the release tarballs, uploaded to every region's artifacts bucket."
  type        = string
  default     = "../dist"
}

variable "domain_name" {
  description = "DNS name of the API (e.g. api.akutan.example.com); Route 53 routes it to the region with the lowest latency."
  type        = string
}

variable "route53_zone_id" {
  description = "Route 53 public hosted zone that holds domain_name."
  type        = string
}

variable "api_allowed_cidrs" {
  description = "Client CIDRs allowed to reach the API load balancers on 443. Only the load balancers are ever open this wide."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "noncurrent_version_expiration_days" {
  description = "Days a deleted or overwritten object version is kept: the grace period after Akutan's retention deletes a checkpoint or segment."
  type        = number
  default     = 7
}

variable "abort_incomplete_multipart_upload_days" {
  description = "Days after which an unfinished multipart upload (a torn checkpoint upload) is aborted."
  type        = number
  default     = 1
}

variable "tags" {
  description = "Extra tags on every resource."
  type        = map(string)
  default     = {}
}
