variable "domain_name" {
  description = "DNS name of the API, e.g. api.akutan.example.com."
  type        = string
}

variable "route53_zone_id" {
  description = "Route 53 public hosted zone that holds domain_name."
  type        = string
}

variable "release_version" {
  description = "Version of the release in ../../../dist to deploy (make release)."
  type        = string
}
