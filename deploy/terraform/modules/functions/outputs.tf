output "function_names" {
  description = "Function name per service."
  value       = { for key, function in aws_lambda_function.this : key => function.function_name }
}

output "function_arns" {
  description = "Function ARN per service."
  value       = { for key, function in aws_lambda_function.this : key => function.arn }
}

output "log_group_names" {
  description = "Log group per function."
  value       = { for key, group in aws_cloudwatch_log_group.this : key => group.name }
}

output "dead_letter_queue_arn" {
  description = "ARN of the queue of failed invocations."
  value       = aws_sqs_queue.dead_letters.arn
}

output "dead_letter_queue_name" {
  description = "Name of the queue of failed invocations."
  value       = aws_sqs_queue.dead_letters.name
}

output "schedule_group_name" {
  description = "EventBridge Scheduler group of the schedules (disable them here to pause the pipeline)."
  value       = aws_scheduler_schedule_group.this.name
}
