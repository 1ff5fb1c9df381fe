output "vpc_id" {
  description = "Id of the VPC the pipeline runs in."
  value       = data.aws_vpc.this.id
}

output "private_subnet_ids" {
  description = "Private subnets used by the worker, the Lambdas, the broker and the cache."
  value       = local.private_subnet_ids
}

output "worker_security_group_id" {
  description = "Security group of the worker tasks."
  value       = aws_security_group.this["worker"].id
}

output "lambda_security_group_id" {
  description = "Security group of the three Lambdas."
  value       = aws_security_group.this["lambda"].id
}

output "broker_security_group_id" {
  description = "Security group of the Amazon MQ broker."
  value       = aws_security_group.this["broker"].id
}

output "cache_security_group_id" {
  description = "Security group of the ElastiCache replication group."
  value       = aws_security_group.this["cache"].id
}
