# Compute.
#
# Log replicas are Raft voters: each has an identity in the peers list and
# durable state, so each is one EC2 instance with a fixed private IP, a
# separate encrypted EBS volume for its Raft stores (it outlives the
# instance) and EC2 auto-recovery. An autoscaling group would replace a voter
# with a stranger.
#
# Views and API servers are interchangeable within their group: one
# autoscaling group per (space, partition) of views, one for the API. A new
# view instance starts with an empty instance-store disk and boots from this
# region's bucket plus the log tail.

# A stock image (Amazon Linux 2023 by default: systemd, xfsprogs and the AWS
# CLI, which the user data uses to fetch the release); no image build.
data "aws_ami" "akutan" {
  most_recent = true
  owners      = var.ami_owners

  filter {
    name   = "name"
    values = [var.ami_name_filter]
  }

  filter {
    name   = "architecture"
    values = [var.architecture]
  }
}

locals {
  # 2^64, the size of each hash space. Partition p of n covers
  # [floor(p * 2^64 / n), floor((p + 1) * 2^64 / n)); the last end is 2^64.
  hash_space_size = 18446744073709551616

  view_ranges = merge([
    for space, n in var.view_partitions : {
      for p in range(n) : "${lower(space)}-${p}" => {
        space = space
        start = format("0x%016x", floor(p * local.hash_space_size / n))
        end   = format("0x%016x", floor((p + 1) * local.hash_space_size / n))
      }
    }
  ]...)

  # This region's voters: voter j sits in availability zone j mod 3, at host
  # 10 + j div 3 of that zone's private subnet.
  log_voters = [
    for j in range(var.log_voters) : {
      id     = "${var.region}-log-${j}"
      region = var.region
      ip     = cidrhost(local.private_cidrs[j % 3], 10 + floor(j / 3))
      az     = j % 3
    }
  ]

  # Every voter's stable name (the root module's private zone), by ID.
  # Peers and clients dial names; a voter binds its own fixed IP.
  log_names = { for p in var.log_peers : p.id => var.log_dns_names[p.id] }

  # Log gRPC addresses for clients (views, API): this region's voters first.
  log_grpc_addrs = join(",", [
    for p in concat(
      [for p in var.log_peers : p if p.region == var.region],
      [for p in var.log_peers : p if p.region != var.region],
    ) : "${local.log_names[p.id]}:${var.ports.log_grpc}"
  ])
}

# Log replicas.

resource "aws_ebs_volume" "log" {
  count = var.log_voters

  availability_zone = local.azs[local.log_voters[count.index].az]
  size              = var.log_volume_size_gib
  type              = "gp3"
  encrypted         = true

  tags = { Name = local.log_voters[count.index].id }
}

resource "aws_instance" "log" {
  count = var.log_voters

  ami                    = data.aws_ami.akutan.id
  instance_type          = var.instance_types.log
  subnet_id              = aws_subnet.private[local.log_voters[count.index].az].id
  private_ip             = local.log_voters[count.index].ip
  vpc_security_group_ids = [aws_security_group.log.id]
  iam_instance_profile   = aws_iam_instance_profile.tier["log"].name

  user_data = module.servers.user_data["log/${local.log_voters[count.index].id}"]

  metadata_options {
    http_tokens = "required"
  }

  maintenance_options {
    auto_recovery = "default"
  }

  root_block_device {
    volume_type = "gp3"
    encrypted   = true
  }

  tags = { Name = local.log_voters[count.index].id, "akutan:role" = "log", "akutan:cluster" = local.cluster }

  # The peers list only bootstraps Raft; membership changes afterwards go
  # through the log's membership API (infra/ procedures), never through a
  # replacement of the instance.
  lifecycle {
    ignore_changes = [ami, user_data]
  }
}

resource "aws_volume_attachment" "log" {
  count = var.log_voters

  device_name                    = "/dev/sdf"
  volume_id                      = aws_ebs_volume.log[count.index].id
  instance_id                    = aws_instance.log[count.index].id
  stop_instance_before_detaching = true
}

# Views: one autoscaling group per (space, partition).

resource "aws_launch_template" "view" {
  for_each = local.view_ranges

  name_prefix            = "${local.cluster}-view-${each.key}-"
  image_id               = data.aws_ami.akutan.id
  instance_type          = var.instance_types.view
  vpc_security_group_ids = [aws_security_group.view.id]

  iam_instance_profile {
    name = aws_iam_instance_profile.tier["view"].name
  }

  metadata_options {
    http_tokens = "required"
  }

  user_data = base64encode(module.servers.user_data["view/${each.key}"])
}

resource "aws_autoscaling_group" "view" {
  for_each = local.view_ranges

  name                = "${local.cluster}-view-${each.key}"
  min_size            = var.view_replicas
  max_size            = var.view_replicas + 1
  desired_capacity    = var.view_replicas
  vpc_zone_identifier = aws_subnet.private[*].id
  health_check_type   = "EC2"

  launch_template {
    id      = aws_launch_template.view[each.key].id
    version = aws_launch_template.view[each.key].latest_version
  }

  # Launch before terminate: a partition never drops below its replica
  # count while a new view boots from the bucket.
  instance_refresh {
    strategy = "Rolling"
    preferences {
      min_healthy_percentage = 100
      max_healthy_percentage = 150
      instance_warmup        = 600
    }
  }

  dynamic "tag" {
    for_each = {
      "akutan:cluster"     = local.cluster
      "akutan:role"        = "view"
      "akutan:space"       = each.value.space
      "akutan:range-start" = each.value.start
      "akutan:range-end"   = each.value.end
      "akutan:grpc-port"   = var.ports.view_grpc
    }
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }
}

# API servers.

resource "aws_launch_template" "api" {
  name_prefix            = "${local.cluster}-api-"
  image_id               = data.aws_ami.akutan.id
  instance_type          = var.instance_types.api
  vpc_security_group_ids = [aws_security_group.api.id]

  iam_instance_profile {
    name = aws_iam_instance_profile.tier["api"].name
  }

  metadata_options {
    http_tokens = "required"
  }

  user_data = base64encode(module.servers.user_data["api"])
}

# The load balancer's health is readiness, which is the region's verdict:
# with health_check_type ELB the group would terminate every API server
# whenever the region is not fully available. So the group replaces only
# dead instances (EC2), and systemd restarts a dead process.
resource "aws_autoscaling_group" "api" {
  name                      = "${local.cluster}-api"
  min_size                  = var.api_servers
  max_size                  = var.api_servers * 2
  desired_capacity          = var.api_servers
  vpc_zone_identifier       = aws_subnet.private[*].id
  target_group_arns         = [aws_lb_target_group.api.arn, aws_lb_target_group.verdict.arn]
  health_check_type         = "EC2"
  health_check_grace_period = 120

  launch_template {
    id      = aws_launch_template.api.id
    version = aws_launch_template.api.latest_version
  }

  instance_refresh {
    strategy = "Rolling"
    preferences {
      min_healthy_percentage = 100
      max_healthy_percentage = 150
      instance_warmup        = 120
    }
  }

  tag {
    key                 = "akutan:role"
    value               = "api"
    propagate_at_launch = true
  }
}
