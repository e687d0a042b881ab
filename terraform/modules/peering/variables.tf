variable "name" {
  description = "Deployment name; prefixes the peering connection's Name tag."
  type        = string
}

variable "requester" {
  description = "The requesting side: its region, VPC, VPC CIDR and private route table."
  type = object({
    region         = string
    vpc_id         = string
    vpc_cidr       = string
    route_table_id = string
  })
}

variable "accepter" {
  description = "The accepting side: its region, VPC, VPC CIDR and private route table."
  type = object({
    region         = string
    vpc_id         = string
    vpc_cidr       = string
    route_table_id = string
  })

  validation {
    condition     = can(cidrhost(var.accepter.vpc_cidr, 0))
    error_message = "The accepter's VPC CIDR must be a valid IPv4 block."
  }
}
