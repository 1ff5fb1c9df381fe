output "alarm_topic_arn" {
  description = "SNS topic the alarms notify."
  value       = aws_sns_topic.alarms.arn
}

output "alarm_names" {
  description = "Names of the alarms."
  value       = concat([for alarm in aws_cloudwatch_metric_alarm.metric : alarm.alarm_name], [aws_cloudwatch_metric_alarm.producer_not_succeeding.alarm_name, aws_cloudwatch_metric_alarm.worker_not_ready.alarm_name])
}

output "alarm_arns" {
  description = "ARN of each alarm, keyed by its name without the prefix (as extra_alarm_actions)."
  value = merge(
    { for key, alarm in aws_cloudwatch_metric_alarm.metric : key => alarm.arn },
    {
      producer-not-succeeding = aws_cloudwatch_metric_alarm.producer_not_succeeding.arn
      worker-not-ready        = aws_cloudwatch_metric_alarm.worker_not_ready.arn
    },
  )
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "dashboard_arn" {
  description = "ARN of the CloudWatch dashboard."
  value       = try(aws_cloudwatch_dashboard.this.dashboard_arn, null)
}
