output "alarm_topic_arn" {
  description = "SNS topic the alarms notify."
  value       = aws_sns_topic.alarms.arn
}

output "alarm_names" {
  description = "Names of the alarms."
  value       = concat([for alarm in aws_cloudwatch_metric_alarm.metric : alarm.alarm_name], [aws_cloudwatch_metric_alarm.producer_not_succeeding.alarm_name])
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}
