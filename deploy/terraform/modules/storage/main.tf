# The pipeline's buckets: created here (versioned, KMS-encrypted, private, TLS only,
# with lifecycle rules), or existing ones owned by another team, who then add the
# statement of the bucket_policy_statements output to their bucket policy.

data "aws_partition" "current" {}

locals {
  # One bucket can serve as both input and output (the seed's single bucket).
  bucket_names = distinct([var.input_bucket_name, var.output_bucket_name])
  created      = var.create_buckets ? toset(local.bucket_names) : toset([])
}

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:Server access logs would need a logging bucket per environment; CloudTrail data events cover audits where required.
  #checkov:skip=CKV_AWS_144:Cross-region replication doubles storage; outputs are recomputable from NOAA products and the hydrofabric is a published data set.
  #checkov:skip=CKV2_AWS_62:No consumer of event notifications: the post-processor runs on a schedule.
  for_each = local.created

  bucket = each.value

  tags = var.tags
}

resource "aws_s3_bucket_ownership_controls" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each = aws_s3_bucket.this

  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id

  rule {
    id     = "tidy-versions-and-uploads"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  dynamic "rule" {
    for_each = var.output_expiration != null && each.key == var.output_bucket_name ? [var.output_expiration] : []

    content {
      id     = "expire-old-outputs"
      status = "Enabled"

      filter {
        prefix = rule.value.prefix
      }

      expiration {
        days = rule.value.days
      }

      abort_incomplete_multipart_upload {
        days_after_initiation = 7
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

data "aws_iam_policy_document" "tls_only" {
  for_each = aws_s3_bucket.this

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [each.value.arn, "${each.value.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id
  policy = data.aws_iam_policy_document.tls_only[each.key].json

  depends_on = [aws_s3_bucket_public_access_block.this]
}

# What the owner of existing buckets adds to their bucket policy: the same grants as
# the roles' own policies, with the roles as principals.
data "aws_iam_policy_document" "handoff" {
  dynamic "statement" {
    for_each = var.s3_statements

    content {
      sid       = statement.value.sid
      effect    = "Allow"
      actions   = statement.value.actions
      resources = statement.value.resources

      principals {
        type        = "AWS"
        identifiers = [statement.value.role_arn]
      }

      dynamic "condition" {
        for_each = length(statement.value.prefixes) > 0 ? [statement.value.prefixes] : []

        content {
          test     = "StringLike"
          variable = "s3:prefix"
          values   = condition.value
        }
      }
    }
  }
}
