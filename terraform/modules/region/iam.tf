# IAM: one role per tier, each with only what the tier does.
#
#   log:  read/write/delete log/*    (archive segments and catalog)
#   view: read/write/delete checkpoints/*  (checkpoints), read log/* (archive replay)
#   api:  ec2:DescribeInstances      (view discovery by tag); no S3 at all
#
# S3 objects are encrypted with this region's KMS key, so writers need
# GenerateDataKey and readers Decrypt on that key only.

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
  # Prefixes each tier may write, and may only read.
  bucket_access = {
    log  = { write = ["log/"], read = [] }
    view = { write = ["checkpoints/"], read = ["log/"] }
  }
}

data "aws_iam_policy_document" "bucket_access" {
  for_each = local.bucket_access

  statement {
    sid       = "WriteOwnPrefix"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = [for p in each.value.write : "${aws_s3_bucket.this.arn}/${p}*"]
  }

  dynamic "statement" {
    for_each = length(each.value.read) > 0 ? [each.value.read] : []
    content {
      sid       = "ReadPrefix"
      actions   = ["s3:GetObject"]
      resources = [for p in statement.value : "${aws_s3_bucket.this.arn}/${p}*"]
    }
  }

  # Listing is for restore and garbage collection; steady state issues none.
  statement {
    sid       = "ListOwnPrefixes"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.this.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [for p in concat(each.value.write, each.value.read) : "${p}*"]
    }
  }

  statement {
    sid       = "UseBucketKey"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.bucket.arn]
  }
}

data "aws_iam_policy_document" "api" {
  statement {
    sid       = "DiscoverViews"
    actions   = ["ec2:DescribeInstances"]
    resources = ["*"] # DescribeInstances supports no resource-level scoping.
  }
}

locals {
  role_policies = {
    log  = data.aws_iam_policy_document.bucket_access["log"].json
    view = data.aws_iam_policy_document.bucket_access["view"].json
    api  = data.aws_iam_policy_document.api.json
  }
}

resource "aws_iam_role" "tier" {
  for_each = local.role_policies

  name               = "${var.name}-${var.region}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
}

resource "aws_iam_role_policy" "tier" {
  for_each = local.role_policies

  name   = "${var.name}-${each.key}"
  role   = aws_iam_role.tier[each.key].id
  policy = each.value
}

resource "aws_iam_instance_profile" "tier" {
  for_each = local.role_policies

  name = "${var.name}-${var.region}-${each.key}"
  role = aws_iam_role.tier[each.key].name
}
