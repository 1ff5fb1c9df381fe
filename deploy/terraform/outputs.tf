output "name" {
  description = "Prefix of every resource name (<app>-<env>)."
  value       = local.name
}

output "bucket_policy_statements" {
  description = "With existing buckets: the bucket-policy JSON to send to the bucket owner, filled with this environment's role ARNs (deploy/README.md, bucket-policy hand-off)."
  value       = module.storage.bucket_policy_statements
}

output "role_arns" {
  description = "ARN of each of the pipeline's roles."
  value       = module.iam.role_arns
}

output "repository_urls" {
  description = "ECR repository per image, where images.yml pushes <url>:<commit sha>."
  value       = module.registry.repository_urls
}

output "registry_url" {
  description = "ECR registry host, for docker login."
  value       = module.registry.registry_url
}

output "broker_amqps_endpoint" {
  description = "RABBITMQ_ENDPOINT of the services."
  value       = module.messaging.amqps_endpoint
}

output "broker_management_url" {
  description = "RabbitMQ management UI and API (RABBITMQ_MANAGEMENT_URL)."
  value       = module.messaging.management_url
}

output "broker_secret_arn" {
  description = "RABBITMQ_SECRET_ARN: the broker credentials ({\"username\",\"password\"})."
  value       = module.messaging.secret_arn
}

output "broker_id" {
  description = "Amazon MQ broker id (for aws mq reboot-broker and the console)."
  value       = module.messaging.broker_id
}

output "cache_auth_token_secret_arn" {
  description = "Secret holding the Redis auth token."
  value       = module.cache.auth_token_secret_arn
}

output "cluster_name" {
  description = "ECS cluster of the worker."
  value       = module.compute.cluster_name
}

output "worker_service_name" {
  description = "ECS service of the worker."
  value       = module.compute.service_name
}

output "function_names" {
  description = "Lambda function per service."
  value       = module.functions.function_names
}

output "schedule_group_name" {
  description = "EventBridge Scheduler group (disable its schedules to pause the pipeline)."
  value       = module.functions.schedule_group_name
}

output "dead_letter_queue_name" {
  description = "SQS queue of failed scheduled invocations."
  value       = module.functions.dead_letter_queue_name
}

output "alarm_topic_arn" {
  description = "SNS topic of the alarms."
  value       = module.observability.alarm_topic_arn
}

output "dashboard_name" {
  description = "CloudWatch dashboard of the pipeline."
  value       = module.observability.dashboard_name
}

output "github_images_role_arn" {
  description = "Set as the repository variable AWS_IMAGES_ROLE_ARN for images.yml."
  value       = module.iam.github_images_role_arn
}

output "github_plan_role_arn" {
  description = "Set as the repository variable AWS_PLAN_ROLE_ARN for terraform.yml."
  value       = module.iam.github_plan_role_arn
}
