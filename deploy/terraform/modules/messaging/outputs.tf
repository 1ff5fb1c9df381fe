output "broker_id" {
  description = "Id of the Amazon MQ broker."
  value       = aws_mq_broker.this.id
}

output "broker_arn" {
  description = "ARN of the Amazon MQ broker."
  value       = aws_mq_broker.this.arn
}

output "broker_name" {
  description = "Name of the broker (the Broker dimension of its CloudWatch metrics)."
  value       = aws_mq_broker.this.broker_name
}

output "amqps_endpoint" {
  description = "AMQPS endpoint of the broker (RABBITMQ_ENDPOINT), amqps://b-....mq.<region>.amazonaws.com:5671."
  value       = try(aws_mq_broker.this.instances[0].endpoints[0], null)
}

output "management_url" {
  description = "HTTPS URL of the RabbitMQ management UI and API (RABBITMQ_MANAGEMENT_URL)."
  value       = try(aws_mq_broker.this.instances[0].console_url, null)
}

output "secret_arn" {
  description = "ARN of the Secrets Manager secret with the broker credentials (RABBITMQ_SECRET_ARN)."
  value       = aws_secretsmanager_secret.broker.arn
}
