# The smallest layout that keeps every invariant: three regions, one log
# voter in each (losing a region leaves 2 of 3), one partition per space,
# two views per partition and two API servers per region.

module "akutan" {
  source = "../.."

  name            = "akutan-small"
  domain_name     = var.domain_name
  route53_zone_id = var.route53_zone_id

  log_voters_per_region    = [1, 1, 1]
  view_partitions          = { HashSP = 1, HashPO = 1 }
  view_replicas_per_region = 2
  api_servers_per_region   = 2

  release_version = var.release_version
  release_dir     = "../../../dist"

  instance_types = {
    log    = "m6i.large"
    view   = "i4i.large"
    api    = "c6i.large"
    daemon = "t3.small"
  }
}
