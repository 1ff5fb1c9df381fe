# ElastiCache (Redis OSS) for the producer's dedupe keys: TLS in transit, KMS at rest,
# an auth token (kept in Secrets Manager for operators; the producer gets it inside
# REDIS_URL, encrypted in the Lambda environment with the stack key).

# ElastiCache auth tokens: 16-128 printable characters without @, " or /.
resource "random_password" "auth" {
  length  = 48
  special = false
}

resource "aws_elasticache_subnet_group" "this" {
  name        = var.name
  description = "Private subnets of the ${var.name} dedupe cache"
  subnet_ids  = var.subnet_ids

  tags = var.tags
}

resource "aws_elasticache_replication_group" "this" {
  #checkov:skip=CKV2_AWS_50:Automatic failover and Multi-AZ follow num_cache_clusters: on with 2+ nodes (prod), impossible with the single node of dev.
  replication_group_id       = var.name
  description                = "Dedupe keys of the ${var.name} producer"
  engine                     = "redis"
  engine_version             = var.engine_version
  node_type                  = var.node_type
  num_cache_clusters         = var.num_cache_clusters
  port                       = 6379
  automatic_failover_enabled = var.num_cache_clusters > 1
  multi_az_enabled           = var.num_cache_clusters > 1
  subnet_group_name          = aws_elasticache_subnet_group.this.name
  security_group_ids         = [var.security_group_id]

  at_rest_encryption_enabled = true
  kms_key_id                 = var.kms_key_arn
  transit_encryption_enabled = true
  auth_token                 = random_password.auth.result
  auth_token_update_strategy = "ROTATE"

  snapshot_retention_limit   = var.snapshot_retention_days
  auto_minor_version_upgrade = true
  apply_immediately          = var.apply_immediately

  tags = var.tags
}

resource "aws_secretsmanager_secret" "auth" {
  #checkov:skip=CKV2_AWS_57:The token is rotated with the replication group (auth_token_update_strategy ROTATE) by a Terraform apply, not by a rotation Lambda.
  name                    = "${var.name}/redis-auth-token"
  description             = "Auth token of the ${var.name} ElastiCache replication group"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.secret_recovery_window_days

  tags = var.tags
}

resource "aws_secretsmanager_secret_version" "auth" {
  secret_id     = aws_secretsmanager_secret.auth.id
  secret_string = random_password.auth.result
}
