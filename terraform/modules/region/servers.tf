# What each server runs: modules/server-config renders every env file and
# user data from this region's inputs (deploy/release's test renders the
# same module with loopback inputs and starts the result). Discovery: each
# view partition and the API servers have a Cloud Map service in this
# region's private namespace; instances register themselves and are healthy
# exactly while /readyz passes (deploy/systemd/akutan-discovery), so
# views-hashsp-0.<region>.<internal_domain> lists that partition's ready
# views. One name per partition keeps each under Cloud Map's 8 answers.

locals {
  store_url = "s3://${aws_s3_bucket.this.id}?region=${var.region}&sse=aws:kms&kms_key_id=${aws_kms_key.bucket.arn}"
  namespace = "${var.region}.${var.internal_domain}"
}

resource "aws_service_discovery_private_dns_namespace" "this" {
  name        = local.namespace
  description = "Akutan ${local.cluster}: views and API servers"
  vpc         = aws_vpc.this.id
}

resource "aws_service_discovery_service" "server" {
  for_each = merge({ for k, _ in local.view_ranges : k => "views-${k}" }, { api = "api" })

  name = each.value

  dns_config {
    namespace_id   = aws_service_discovery_private_dns_namespace.this.id
    routing_policy = "MULTIVALUE"

    dns_records {
      type = "A"
      ttl  = 10
    }
  }

  # Custom health: akutan-discovery reports /readyz (readiness), not
  # liveness.
  health_check_custom_config {
    failure_threshold = 1
  }
}

module "servers" {
  source = "../server-config"

  cluster   = local.cluster
  store_url = local.store_url
  log_peers = [
    for p in var.log_peers : {
      id        = p.id
      raft_addr = "${local.log_names[p.id]}:${var.ports.log_raft}"
      grpc_addr = "${local.log_names[p.id]}:${var.ports.log_grpc}"
    }
  ]
  log_listen = {
    for v in local.log_voters : v.id => { raft_addr = "${v.ip}:${var.ports.log_raft}", grpc_addr = "${v.ip}:${var.ports.log_grpc}" }
  }
  local_log_ids = [for v in local.log_voters : v.id]
  log_clients   = split(",", local.log_grpc_addrs)
  view_ranges   = local.view_ranges
  views_dns     = [for k, _ in local.view_ranges : "views-${k}.${local.namespace}:${var.ports.view_grpc}"]
  listen = {
    view_grpc = "0.0.0.0:${var.ports.view_grpc}"
    api_grpc  = "0.0.0.0:${var.ports.api_grpc}"
    http      = "0.0.0.0:${var.ports.http}"
  }
  checkpoint_interval = var.checkpoint_interval
  critical_clusters   = var.critical_clusters
  release             = { bucket = aws_s3_bucket.artifacts.id, version = var.release_version }
  discovery           = { for k, s in aws_service_discovery_service.server : k => s.id }
  log_disks           = { for i, v in local.log_voters : v.id => aws_ebs_volume.log[i].id }
  metrics             = { log_group = aws_cloudwatch_log_group.metrics.name, namespace = local.metrics_namespace }
}

# The release: this region's artifacts bucket (instances reach S3 only
# through the region's gateway endpoint), written by Terraform alone.

resource "aws_s3_bucket" "artifacts" {
  bucket = "${var.bucket_name}-artifacts"
}

resource "aws_s3_bucket_public_access_block" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_object" "release" {
  for_each = toset(["amd64", "arm64"])

  bucket = aws_s3_bucket.artifacts.id
  key    = "releases/akutan-${var.release_version}-linux-${each.key}.tar.gz"
  source = "${var.release_dir}/akutan-${var.release_version}-linux-${each.key}.tar.gz"
  etag   = filemd5("${var.release_dir}/akutan-${var.release_version}-linux-${each.key}.tar.gz")
}

# The control-plane daemons: each a singleton, an autoscaling group of one
# that replaces a lost instance, with its own role.

resource "aws_launch_template" "daemon" {
  for_each = toset(["truncator", "pruner"])

  name_prefix            = "${local.cluster}-${each.key}-"
  image_id               = data.aws_ami.akutan.id
  instance_type          = var.instance_types.daemon
  vpc_security_group_ids = [aws_security_group.daemon.id]

  iam_instance_profile {
    name = aws_iam_instance_profile.tier[each.key].name
  }

  metadata_options {
    http_tokens = "required"
  }

  user_data = base64encode(module.servers.user_data[each.key])
}

resource "aws_autoscaling_group" "daemon" {
  for_each = toset(["truncator", "pruner"])

  name                = "${local.cluster}-${each.key}"
  min_size            = 1
  max_size            = 1
  desired_capacity    = 1
  vpc_zone_identifier = aws_subnet.private[*].id
  health_check_type   = "EC2"

  launch_template {
    id      = aws_launch_template.daemon[each.key].id
    version = aws_launch_template.daemon[each.key].latest_version
  }

  tag {
    key                 = "akutan:role"
    value               = each.key
    propagate_at_launch = true
  }
}
