# IAM: one role per tier and daemon, each naming only the keys it touches
# (snapshot/doc.go, "Bucket layout"); only the pruner deletes.
#
#   log:       writes log/* (archive segments and catalog) and, as the
#              first archiver, the bucket marker and an empty
#              checkpoints/catalog.json
#   view:      writes checkpoints/*; reads log/* (archive replay)
#   api:       no bucket; registers itself in Cloud Map
#   truncator: reads the catalogs and manifests; writes akutan-clock (the
#              store's clock)
#   pruner:    reads, writes and deletes log/* and checkpoints/*; writes
#              akutan-clock
#
# Every role may read the release and list the bucket: S3 answers 403, not
# 404, for a missing key to a caller without s3:ListBucket, and the store
# tells "absent" from "denied" by that 404 (catalogs, the marker).

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

locals {
  # Keys (patterns) each role may read, write and delete in the bucket.
  bucket_access = {
    log = {
      read   = ["log/*", "checkpoints/catalog.json", "akutan-bucket.json"]
      write  = ["log/*", "checkpoints/catalog.json", "akutan-bucket.json"]
      delete = []
    }
    view = {
      read   = ["log/*", "checkpoints/*", "akutan-bucket.json"]
      write  = ["checkpoints/*"]
      delete = []
    }
    api = { read = [], write = [], delete = [] }
    truncator = {
      read   = ["log/catalog.json", "checkpoints/*", "clusters.json", "akutan-bucket.json", "akutan-clock"]
      write  = ["akutan-clock"]
      delete = []
    }
    pruner = {
      read   = ["log/*", "checkpoints/*", "clusters.json", "akutan-bucket.json", "akutan-clock"]
      write  = ["log/*", "checkpoints/*", "akutan-clock"]
      delete = ["log/*", "checkpoints/*"]
    }
  }

  # Roles that run the CloudWatch agent (a /metrics listener to scrape).
  metrics_roles = ["log", "view", "api"]

  # Cloud Map services each role registers in.
  discovery_access = {
    view = [for k, _ in local.view_ranges : aws_service_discovery_service.server[k].arn]
    api  = [aws_service_discovery_service.server["api"].arn]
  }
}

data "aws_iam_policy_document" "role" {
  for_each = local.bucket_access

  statement {
    sid       = "ReadRelease"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.artifacts.arn}/releases/*"]
  }

  dynamic "statement" {
    for_each = length(each.value.read) > 0 ? [1] : []
    content {
      sid       = "ReadOwnKeys"
      actions   = ["s3:GetObject"]
      resources = [for k in each.value.read : "${aws_s3_bucket.this.arn}/${k}"]
    }
  }

  dynamic "statement" {
    for_each = length(each.value.write) > 0 ? [1] : []
    content {
      sid       = "WriteOwnKeys"
      actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
      resources = [for k in each.value.write : "${aws_s3_bucket.this.arn}/${k}"]
    }
  }

  dynamic "statement" {
    for_each = length(each.value.delete) > 0 ? [1] : []
    content {
      sid       = "DeleteOwnKeys"
      actions   = ["s3:DeleteObject"]
      resources = [for k in each.value.delete : "${aws_s3_bucket.this.arn}/${k}"]
    }
  }

  dynamic "statement" {
    for_each = length(each.value.read) > 0 ? [1] : []
    content {
      sid       = "ListBucket"
      actions   = ["s3:ListBucket"]
      resources = [aws_s3_bucket.this.arn]
    }
  }

  dynamic "statement" {
    for_each = length(each.value.read) > 0 ? [1] : []
    content {
      sid       = "UseBucketKey"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [aws_kms_key.bucket.arn]
    }
  }

  dynamic "statement" {
    for_each = contains(keys(local.discovery_access), each.key) ? [1] : []
    content {
      sid       = "RegisterInCloudMap"
      actions   = ["servicediscovery:RegisterInstance", "servicediscovery:DeregisterInstance", "servicediscovery:UpdateInstanceCustomHealthStatus"]
      resources = local.discovery_access[each.key]
    }
  }

  # The CloudWatch agent writes the scraped metrics into this region's
  # metrics log group, and nowhere else.
  dynamic "statement" {
    for_each = contains(local.metrics_roles, each.key) ? [1] : []
    content {
      sid       = "ShipMetrics"
      actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
      resources = ["${aws_cloudwatch_log_group.metrics.arn}:*"]
    }
  }

  # Cloud Map writes the instance's record in its namespace's zone on the
  # caller's behalf.
  dynamic "statement" {
    for_each = contains(keys(local.discovery_access), each.key) ? [1] : []
    content {
      sid       = "CloudMapRecords"
      actions   = ["route53:ChangeResourceRecordSets", "route53:GetHealthCheck", "route53:CreateHealthCheck", "route53:UpdateHealthCheck", "route53:DeleteHealthCheck"]
      resources = ["arn:aws:route53:::hostedzone/${aws_service_discovery_private_dns_namespace.this.hosted_zone}", "arn:aws:route53:::healthcheck/*"]
    }
  }
}

resource "aws_iam_role" "tier" {
  for_each = local.bucket_access

  name               = "${var.name}-${var.region}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
}

resource "aws_iam_role_policy" "tier" {
  for_each = local.bucket_access

  name   = "${var.name}-${each.key}"
  role   = aws_iam_role.tier[each.key].id
  policy = data.aws_iam_policy_document.role[each.key].json
}

resource "aws_iam_instance_profile" "tier" {
  for_each = local.bucket_access

  name = "${var.name}-${var.region}-${each.key}"
  role = aws_iam_role.tier[each.key].name
}
