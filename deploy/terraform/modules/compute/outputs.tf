output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "cluster_arn" {
  description = "ARN of the ECS cluster."
  value       = aws_ecs_cluster.this.arn
}

output "service_name" {
  description = "Name of the worker's ECS service."
  value       = aws_ecs_service.worker.name
}

output "task_definition_arn" {
  description = "ARN (with revision) of the worker task definition."
  value       = aws_ecs_task_definition.worker.arn
}

output "log_group_name" {
  description = "Log group of the worker containers."
  value       = aws_cloudwatch_log_group.worker.name
}

output "scaling_policy_name" {
  description = "Target-tracking policy on BacklogPerTask (metric mode), or null (direct mode: the autoscaler sets the count)."
  value       = try(aws_appautoscaling_policy.backlog_per_task[0].name, null)
}
