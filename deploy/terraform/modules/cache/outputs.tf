output "replication_group_id" {
  description = "Id of the ElastiCache replication group."
  value       = aws_elasticache_replication_group.this.id
}

output "primary_endpoint" {
  description = "Host name of the primary node."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "redis_url" {
  description = "REDIS_URL for the producer: rediss://:<token>@<primary>:6379/0 (TLS and auth)."
  value       = "rediss://:${random_password.auth.result}@${aws_elasticache_replication_group.this.primary_endpoint_address}:6379/0"
  sensitive   = true
}

output "auth_token_secret_arn" {
  description = "ARN of the Secrets Manager secret holding the auth token."
  value       = aws_secretsmanager_secret.auth.arn
}
