# Akutan in three regions: one log whose Raft voters are spread over the
# regions, and in every region a full Akutan cluster (views and API servers)
# with its own bucket, replicated to the others. See README.md.

data "aws_caller_identity" "current" {
  provider = aws.region_a
}

locals {
  tags = merge(var.tags, { "akutan:deployment" = var.name })

  # Bucket names are global: region and account make them unique.
  bucket_names = [for r in var.regions : "${var.name}-${r}-${data.aws_caller_identity.current.account_id}"]

  # The log's peers list: every voter of every region. The regions compute
  # their voters from variables alone, so feeding this back into them is no
  # cycle.
  log_peers = concat(module.region_a.log_voters, module.region_b.log_voters, module.region_c.log_voters)

  # Each voter's stable name (dns.tf), from the record itself, so a voter
  # starts only once the names it dials exist.
  log_dns_names = { for id, r in aws_route53_record.log : id => r.fqdn }

  # Each region's network, for the peering mesh.
  networks = [
    for i, m in [module.region_a, module.region_b, module.region_c] : {
      region         = var.regions[i]
      vpc_id         = m.vpc_id
      vpc_cidr       = m.vpc_cidr
      route_table_id = m.private_route_table_id
    }
  ]
}

module "region_a" {
  source    = "./modules/region"
  providers = { aws = aws.region_a }

  name                                   = var.name
  region                                 = var.regions[0]
  vpc_cidr                               = var.vpc_cidrs[0]
  peer_vpc_cidrs                         = var.vpc_cidrs
  log_voters                             = var.log_voters_per_region[0]
  log_peers                              = local.log_peers
  log_dns_names                          = local.log_dns_names
  internal_domain                        = var.internal_domain
  view_partitions                        = var.view_partitions
  view_replicas                          = var.view_replicas_per_region
  api_servers                            = var.api_servers_per_region
  instance_types                         = var.instance_types
  ports                                  = var.ports
  ami_name_filter                        = var.ami_name_filter
  critical_clusters                      = [for r in var.regions : "${var.name}-${r}"]
  release_version                        = var.release_version
  release_dir                            = var.release_dir
  domain_name                            = var.domain_name
  route53_zone_id                        = var.route53_zone_id
  api_allowed_cidrs                      = var.api_allowed_cidrs
  bucket_name                            = local.bucket_names[0]
  noncurrent_version_expiration_days     = var.noncurrent_version_expiration_days
  abort_incomplete_multipart_upload_days = var.abort_incomplete_multipart_upload_days
  replication_destinations = [
    { region = var.regions[1], bucket_arn = module.region_b.bucket_arn, kms_key_arn = module.region_b.kms_key_arn },
    { region = var.regions[2], bucket_arn = module.region_c.bucket_arn, kms_key_arn = module.region_c.kms_key_arn },
  ]
}

module "region_b" {
  source    = "./modules/region"
  providers = { aws = aws.region_b }

  name                                   = var.name
  region                                 = var.regions[1]
  vpc_cidr                               = var.vpc_cidrs[1]
  peer_vpc_cidrs                         = var.vpc_cidrs
  log_voters                             = var.log_voters_per_region[1]
  log_peers                              = local.log_peers
  log_dns_names                          = local.log_dns_names
  internal_domain                        = var.internal_domain
  view_partitions                        = var.view_partitions
  view_replicas                          = var.view_replicas_per_region
  api_servers                            = var.api_servers_per_region
  instance_types                         = var.instance_types
  ports                                  = var.ports
  ami_name_filter                        = var.ami_name_filter
  critical_clusters                      = [for r in var.regions : "${var.name}-${r}"]
  release_version                        = var.release_version
  release_dir                            = var.release_dir
  domain_name                            = var.domain_name
  route53_zone_id                        = var.route53_zone_id
  api_allowed_cidrs                      = var.api_allowed_cidrs
  bucket_name                            = local.bucket_names[1]
  noncurrent_version_expiration_days     = var.noncurrent_version_expiration_days
  abort_incomplete_multipart_upload_days = var.abort_incomplete_multipart_upload_days
  replication_destinations = [
    { region = var.regions[0], bucket_arn = module.region_a.bucket_arn, kms_key_arn = module.region_a.kms_key_arn },
    { region = var.regions[2], bucket_arn = module.region_c.bucket_arn, kms_key_arn = module.region_c.kms_key_arn },
  ]
}

module "region_c" {
  source    = "./modules/region"
  providers = { aws = aws.region_c }

  name                                   = var.name
  region                                 = var.regions[2]
  vpc_cidr                               = var.vpc_cidrs[2]
  peer_vpc_cidrs                         = var.vpc_cidrs
  log_voters                             = var.log_voters_per_region[2]
  log_peers                              = local.log_peers
  log_dns_names                          = local.log_dns_names
  internal_domain                        = var.internal_domain
  view_partitions                        = var.view_partitions
  view_replicas                          = var.view_replicas_per_region
  api_servers                            = var.api_servers_per_region
  instance_types                         = var.instance_types
  ports                                  = var.ports
  ami_name_filter                        = var.ami_name_filter
  critical_clusters                      = [for r in var.regions : "${var.name}-${r}"]
  release_version                        = var.release_version
  release_dir                            = var.release_dir
  domain_name                            = var.domain_name
  route53_zone_id                        = var.route53_zone_id
  api_allowed_cidrs                      = var.api_allowed_cidrs
  bucket_name                            = local.bucket_names[2]
  noncurrent_version_expiration_days     = var.noncurrent_version_expiration_days
  abort_incomplete_multipart_upload_days = var.abort_incomplete_multipart_upload_days
  replication_destinations = [
    { region = var.regions[0], bucket_arn = module.region_a.bucket_arn, kms_key_arn = module.region_a.kms_key_arn },
    { region = var.regions[1], bucket_arn = module.region_b.bucket_arn, kms_key_arn = module.region_b.kms_key_arn },
  ]
}

# Raft between regions: a full mesh of VPC peering.

module "peering_ab" {
  source    = "./modules/peering"
  providers = { aws.requester = aws.region_a, aws.accepter = aws.region_b }

  name      = var.name
  requester = local.networks[0]
  accepter  = local.networks[1]
}

module "peering_ac" {
  source    = "./modules/peering"
  providers = { aws.requester = aws.region_a, aws.accepter = aws.region_c }

  name      = var.name
  requester = local.networks[0]
  accepter  = local.networks[2]
}

module "peering_bc" {
  source    = "./modules/peering"
  providers = { aws.requester = aws.region_b, aws.accepter = aws.region_c }

  name      = var.name
  requester = local.networks[1]
  accepter  = local.networks[2]
}
