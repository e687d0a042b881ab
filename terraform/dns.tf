# Stable names for the log's voters: one private zone (var.internal_domain)
# shared by the three VPCs, with an A record per voter,
# <voter ID>.<internal_domain>, e.g. us-east-1-log-0.akutan.internal. The
# other voters (the --peers list, so Raft's configuration), the views, the
# API servers and the truncator dial these names; each voter binds its own
# fixed IP. Replacing a voter's instance at a new address is then a record
# change, not a change of every peer's configuration. The regions' Cloud
# Map namespaces (<region>.<internal_domain>) are more specific zones in
# the same VPCs, which the VPC resolver prefers for their own names.

resource "aws_route53_zone" "internal" {
  provider = aws.region_a

  name    = var.internal_domain
  comment = "Akutan ${var.name}: log voters' stable names"

  vpc {
    vpc_id     = module.region_a.vpc_id
    vpc_region = var.regions[0]
  }

  vpc {
    vpc_id     = module.region_b.vpc_id
    vpc_region = var.regions[1]
  }

  vpc {
    vpc_id     = module.region_c.vpc_id
    vpc_region = var.regions[2]
  }
}

resource "aws_route53_record" "log" {
  provider = aws.region_a
  for_each = { for p in local.log_peers : p.id => p }

  zone_id = aws_route53_zone.internal.zone_id
  name    = "${each.key}.${var.internal_domain}"
  type    = "A"
  ttl     = 60
  records = [each.value.ip]
}
